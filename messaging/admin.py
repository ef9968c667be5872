import json

from django import forms
from django.contrib import admin

from messaging import models
from messaging.lessons.spec import LessonFormatError, spec_from_dict, spec_to_dict


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


# --- lessons -------------------------------------------------------------------------------


class IndentedJSONField(forms.JSONField):
    """A lesson's spec is edited by hand: one key per line reads like the file it came from."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


class LessonAdminForm(forms.ModelForm):
    spec = IndentedJSONField(
        widget=forms.Textarea(attrs={"rows": 30, "cols": 100, "style": "font-family: monospace"})
    )

    class Meta:
        model = models.Lesson
        fields = ["slug", "spec", "source_path"]

    def clean(self):

        cleaned = super().clean()
        spec = cleaned.get("spec")
        if spec is None:
            return cleaned
        # The same validation the loader runs: a lesson that cannot be played is not saved.
        try:
            parsed = spec_from_dict(spec, path="spec")
        except LessonFormatError as error:
            raise forms.ValidationError({"spec": str(error)}) from None
        if cleaned.get("slug") and parsed.slug != cleaned["slug"]:
            raise forms.ValidationError(
                {
                    "spec": f"The spec's slug is {parsed.slug!r} but the lesson's is "
                    f"{cleaned['slug']!r}: they must be the same."
                }
            )
        return cleaned


@admin.register(models.Lesson)
class LessonAdmin(admin.ModelAdmin):
    form = LessonAdminForm
    list_display = ["order", "slug", "title", "source_path", "updated_at"]
    list_display_links = ["slug"]
    search_fields = ["slug", "title"]
    # Title and order are read from the spec when it is saved, as the loader does.
    readonly_fields = ["title", "order", "updated_at"]

    def save_model(self, request, obj, form, change):

        spec = spec_from_dict(obj.spec, path="spec")
        obj.spec, obj.title, obj.order = spec_to_dict(spec), spec.title, spec.order
        super().save_model(request, obj, form, change)


@admin.register(models.LessonProgress)
class LessonProgressAdmin(admin.ModelAdmin):
    list_display = ["user", "lesson_slug", "completed_at", "quiz_correct", "quiz_total"]
    search_fields = ["lesson_slug", "user__username"]


@admin.register(models.RoomSnapshot)
class RoomSnapshotAdmin(admin.ModelAdmin):
    list_display = ["room", "label", "created_at"]


@admin.register(models.LessonPrediction)
class LessonPredictionAdmin(admin.ModelAdmin):
    list_display = ["room", "lesson_slug", "question", "student", "choice"]
    list_filter = ["lesson_slug"]
