from django.contrib import admin

from messaging import models


@admin.register(models.Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["code", "title", "kind", "owner", "last_seq", "sim_time_ms", "last_active_at"]
    list_filter = ["kind"]
    search_fields = ["code", "title"]


class PartitionInline(admin.TabularInline):
    model = models.Partition
    extra = 0
    readonly_fields = ["index", "log_start_offset", "log_end_offset"]


@admin.register(models.Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "room", "partition_count", "cleanup_policy", "retention_ms"]
    list_filter = ["cleanup_policy"]
    search_fields = ["name", "room__code"]
    inlines = [PartitionInline]


@admin.register(models.Partition)
class PartitionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "log_start_offset", "log_end_offset"]
    list_select_related = ["topic"]


@admin.register(models.Record)
class RecordAdmin(admin.ModelAdmin):
    list_display = ["partition", "offset", "key", "value", "timestamp_ms", "producer"]
    list_select_related = ["partition__topic"]
    search_fields = ["key"]


class MemberInline(admin.TabularInline):
    model = models.Member
    extra = 0


@admin.register(models.ConsumerGroup)
class ConsumerGroupAdmin(admin.ModelAdmin):
    list_display = ["group_id", "room", "state", "generation", "assignor", "protocol", "delivery"]
    list_filter = ["state", "assignor", "protocol", "delivery"]
    inlines = [MemberInline]


@admin.register(models.Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["member_id", "group", "client_id", "group_instance_id", "kind", "crashed"]
    list_filter = ["kind", "crashed"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["group", "member", "partition", "generation", "position"]


@admin.register(models.CommittedOffset)
class CommittedOffsetAdmin(admin.ModelAdmin):
    list_display = ["group", "partition", "offset", "committed_at_ms"]


@admin.register(models.RoomEvent)
class RoomEventAdmin(admin.ModelAdmin):
    list_display = ["room", "seq", "type", "created_at"]
    list_filter = ["type"]
