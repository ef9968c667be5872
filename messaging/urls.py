"""Every URL of the app, in one table: pages, then the classroom, lessons, queues, and the APIs.

A room's lesson endpoints live under `r/<code>/lesson/`: the undo middleware
(`views/middleware.py`) takes no snapshot there (they are the panel's own buttons, not steps of
the lesson).

The Kafka REST API follows Confluent REST Proxy's paths under the room's base
`api/kafka/<code>`. An SQS SDK posts every action to its `endpoint_url`: `api/sqs/` (the room is
the access key id) or `api/sqs/<code>/` (the room is in the path). botocore drops a trailing
slash the endpoint URL did not have, so both spellings are served. Some SDKs post to the queue's
URL instead (`<endpoint>/000000000000/<queue name>`): the same view answers there too.
"""

from django.urls import path, re_path

from messaging.api import brokers as brokers_api
from messaging.api import kafka_rest as kafka
from messaging.api import rooms as rooms_api
from messaging.api import sqs as sqs_api
from messaging.views import (
    accounts,
    board,
    brokers,
    classroom,
    controls,
    lesson_builder,
    lesson_classroom,
    lesson_progress,
    lessons,
    queues,
    rebalances,
    share_groups,
    student,
    timeline,
)

ROOM = "r/<str:code>/"
QUEUES = ROOM + "queues/"
LESSON = ROOM + "lesson/"
KAFKA = "api/kafka/<str:code>"
CLUSTER = KAFKA + "/v3/clusters/<str:cluster_id>"
TOPIC = CLUSTER + "/topics/<str:topic>"
GROUP = CLUSTER + "/consumer-groups/<str:group>"
INSTANCE = KAFKA + "/consumers/<str:group>/instances/<str:name>"
SQS_ACCOUNT = r"(?P<account>\d{12})/(?P<name>[^/]+)/?"

urlpatterns = [
    # The board
    path("", board.home, name="home"),
    path("about/", board.fidelity, name="fidelity"),
    path("rebalances/", rebalances.rebalance_compare, name="rebalance_compare"),
    path("rooms/new/", board.room_new, name="room_new"),
    path("join/", board.room_join, name="room_join"),
    path(ROOM, board.room_board, name="room"),
    path(ROOM + "state.json", board.room_state, name="room_state"),
    path(ROOM + "produce/", board.record_produce, name="record_produce"),
    path(ROOM + "topics/new/", board.topic_new, name="topic_new"),
    path(ROOM + "board/", board.room_live, name="room_live"),
    # The room's brokers (#16)
    path(ROOM + "brokers/", brokers.brokers_panel, name="brokers_panel"),
    path(ROOM + "brokers/count/", brokers.brokers_count, name="brokers_count"),
    path(ROOM + "brokers/elect/", brokers.leaders_elect, name="leaders_elect"),
    path(ROOM + "brokers/<int:broker_id>/", brokers.broker_control, name="broker_control"),
    # The room's timeline (#17): its forms post outside r/<code>/, where a lesson room's undo
    # middleware would take a snapshot of a step that changes nothing in the room.
    path(ROOM + "timeline/", timeline.room_timeline, name="room_timeline"),
    path("timeline/<str:code>/fork/", timeline.timeline_fork, name="timeline_fork"),
    path("timeline/<str:code>/record/", timeline.timeline_record, name="timeline_record"),
    path("replay/<str:token>/", timeline.recording_replay, name="recording_replay"),
    path(ROOM + "clock/", controls.clock_control, name="clock_control"),
    path(ROOM + "producers/new/", controls.producer_new, name="producer_new"),
    path(ROOM + "producers/<int:pk>/", controls.producer_control, name="producer_control"),
    path(ROOM + "groups/new/", controls.group_new, name="group_new"),
    path(ROOM + "groups/<int:pk>/members/", controls.member_new, name="member_new"),
    path(ROOM + "groups/<int:pk>/reset/", controls.offsets_reset, name="offsets_reset"),
    path(ROOM + "members/<int:pk>/", controls.member_control, name="member_control"),
    path(ROOM + "topics/<int:pk>/partitions/", controls.partitions_add, name="partitions_add"),
    path(ROOM + "topics/<int:pk>/config/", controls.topic_config, name="topic_config"),
    # SQS FIFO, the classic broker, side by side
    path(QUEUES, queues.queues_page, name="queues"),
    path(QUEUES + "fragment/", queues.queues_fragment, name="queues_fragment"),
    path(QUEUES + "side-by-side/", queues.side_by_side, name="side_by_side"),
    path(
        QUEUES + "side-by-side/fragment/",
        queues.side_by_side_fragment,
        name="side_by_side_fragment",
    ),
    path(QUEUES + "side-by-side/mirror/", queues.mirror, name="queues_mirror"),
    path(QUEUES + "clock/step/", queues.queues_clock_step, name="queues_clock_step"),
    path(QUEUES + "sqs/new/", queues.sqs_queue_new, name="sqs_queue_new"),
    path(QUEUES + "sqs/send/", queues.sqs_send, name="sqs_send"),
    path(QUEUES + "sqs/receive/", queues.sqs_receive, name="sqs_receive"),
    path(QUEUES + "sqs/delete/", queues.sqs_delete, name="sqs_delete"),
    path(QUEUES + "sqs/visibility/", queues.sqs_change_visibility, name="sqs_change_visibility"),
    path(QUEUES + "sqs/purge/", queues.sqs_purge, name="sqs_purge"),
    path(QUEUES + "classic/publish/", queues.classic_publish, name="classic_publish"),
    path(QUEUES + "classic/consume/", queues.classic_consume, name="classic_consume"),
    path(QUEUES + "classic/ack/", queues.classic_ack, name="classic_ack"),
    path(QUEUES + "classic/nack/", queues.classic_nack, name="classic_nack"),
    path(QUEUES + "classic/close/", queues.classic_close, name="classic_close"),
    path(QUEUES + "classic/queues/new/", queues.classic_queue_new, name="classic_queue_new"),
    path(
        QUEUES + "classic/exchanges/new/", queues.classic_exchange_new, name="classic_exchange_new"
    ),
    path(QUEUES + "classic/bind/", queues.classic_bind, name="classic_bind"),
    # Share groups (KIP-932, #15) and their side by side with SQS FIFO and a consumer group
    path(ROOM + "share/", share_groups.share_page, name="share_page"),
    path(ROOM + "share/live/", share_groups.share_fragment, name="share_fragment"),
    path(ROOM + "share/compare/", share_groups.share_compare_page, name="share_compare"),
    path(
        ROOM + "share/compare/live/",
        share_groups.share_compare_fragment,
        name="share_compare_fragment",
    ),
    path(
        ROOM + "share/compare/setup/",
        share_groups.share_compare_setup,
        name="share_compare_setup",
    ),
    path(ROOM + "share/new/", share_groups.share_group_new, name="share_group_new"),
    path(ROOM + "share/settings/", share_groups.share_group_settings, name="share_group_settings"),
    path(ROOM + "share/delete/", share_groups.share_group_remove, name="share_group_remove"),
    path(ROOM + "share/join/", share_groups.share_member_new, name="share_member_new"),
    path(ROOM + "share/member/", share_groups.share_member_action, name="share_member_action"),
    path(ROOM + "share/ack/", share_groups.share_ack, name="share_ack"),
    path(ROOM + "share/clock/", share_groups.share_clock_step, name="share_clock_step"),
    # Instructors and classrooms. /accounts/login/ is Django's default LOGIN_URL.
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", accounts.login_view, name="login"),
    path("accounts/logout/", accounts.logout_view, name="logout"),
    path("classrooms/", classroom.classroom_list, name="classroom_list"),
    path("classrooms/new/", classroom.classroom_new, name="classroom_new"),
    path(ROOM + "present/", classroom.classroom_present, name="classroom_present"),
    path(
        ROOM + "present/students/",
        classroom.classroom_present_students,
        name="classroom_present_students",
    ),
    path(ROOM + "present/clock/", classroom.classroom_clock, name="classroom_clock"),
    path(ROOM + "present/locks/", classroom.classroom_locks, name="classroom_locks"),
    path(ROOM + "present/follow/", classroom.classroom_follow, name="classroom_follow"),
    path(ROOM + "present/enlist/", classroom.classroom_enlist, name="classroom_enlist"),
    path(ROOM + "present/reset/", classroom.classroom_reset, name="classroom_reset"),
    path(
        ROOM + "present/students/<int:pk>/remove/",
        classroom.classroom_student_remove,
        name="classroom_student_remove",
    ),
    path(ROOM + "me/", student.student_me, name="student_me"),
    path(ROOM + "me/consumer/", student.student_consumer, name="student_consumer"),
    path("j/<str:code>/", classroom.student_join, name="student_join"),
    # Lessons
    path("lessons/", lessons.lesson_list, name="lesson_list"),
    path("lessons/progress.json", lesson_progress.progress_export, name="lesson_progress_export"),
    path(
        "lessons/progress/import/", lesson_progress.progress_import, name="lesson_progress_import"
    ),
    # The lesson builder and share links (before lessons/<slug>/, which would take "mine")
    path("lessons/mine/", lesson_builder.builder_list, name="builder_list"),
    path("lessons/mine/new/", lesson_builder.builder_new, name="builder_new"),
    path("lessons/mine/import/", lesson_builder.builder_import, name="builder_import"),
    path("lessons/mine/<int:pk>/", lesson_builder.builder, name="builder"),
    path("lessons/mine/<int:pk>/goals/", lesson_builder.builder_goals, name="builder_goals"),
    path("lessons/mine/<int:pk>/pending/", lesson_builder.builder_pending, name="builder_pending"),
    path(
        "lessons/mine/<int:pk>/goal-form/",
        lesson_builder.builder_goal_form,
        name="builder_goal_form",
    ),
    path(
        "lessons/mine/<int:pk>/goal-preview/",
        lesson_builder.builder_goal_preview,
        name="builder_goal_preview",
    ),
    path("lessons/mine/<int:pk>/export.toml", lesson_builder.builder_export, name="builder_export"),
    path("lessons/mine/<int:pk>/preview/", lesson_builder.builder_preview, name="builder_preview"),
    path("lessons/mine/<int:pk>/delete/", lesson_builder.builder_delete, name="builder_delete"),
    path(
        "lessons/mine/<int:pk>/<slug:action>/",
        lesson_builder.builder_action,
        name="builder_action",
    ),
    path("lessons/shared/<str:token>/", lesson_builder.lesson_shared, name="lesson_shared"),
    path("lessons/<slug:slug>/", lessons.lesson_start, name="lesson_start"),
    path(LESSON, lessons.lesson_room, name="lesson_room"),
    path(LESSON + "panel/", lessons.lesson_panel, name="lesson_panel"),
    path(LESSON + "hint/", lessons.lesson_hint, name="lesson_hint"),
    path(LESSON + "solution/", lessons.lesson_solution, name="lesson_solution"),
    path(LESSON + "predict/", lessons.lesson_predict, name="lesson_predict"),
    path(LESSON + "do/", lessons.lesson_do, name="lesson_do"),
    path(LESSON + "undo/", lessons.lesson_undo, name="lesson_undo"),
    path(LESSON + "reset/", lessons.lesson_reset, name="lesson_reset"),
    path(LESSON + "quiz/", lessons.lesson_quiz, name="lesson_quiz"),
    path(LESSON + "follow/", lesson_classroom.lesson_follow, name="lesson_follow"),
    path(LESSON + "present/", lesson_classroom.lesson_present, name="lesson_present"),
    path(LESSON + "run/", lesson_classroom.lesson_run, name="lesson_run"),
    path(LESSON + "next/", lesson_classroom.lesson_next_stage, name="lesson_next_stage"),
    path(LESSON + "stop/", lesson_classroom.lesson_stop, name="lesson_stop"),
    # The JSON APIs for learners' own code: rooms, then Kafka REST Proxy v3 and v2
    path("api/rooms", rooms_api.room_create, name="api_rooms"),
    path("api/rooms/", rooms_api.room_create),
    # A room's brokers (#16)
    path("api/rooms/<str:code>/brokers", brokers_api.brokers, name="api_brokers"),
    path("api/rooms/<str:code>/brokers/elect", brokers_api.leaders_elect, name="api_leaders_elect"),
    path(
        "api/rooms/<str:code>/brokers/<int:broker_id>/<slug:action>",
        brokers_api.broker_action,
        name="api_broker_action",
    ),
    path(KAFKA, kafka.root, name="kafka_root"),
    path(KAFKA + "/v3/clusters", kafka.clusters, name="kafka_clusters"),
    path(CLUSTER, kafka.cluster, name="kafka_cluster"),
    path(CLUSTER + "/topics", kafka.v3_topics, name="kafka_v3_topics"),
    path(TOPIC, kafka.v3_topic, name="kafka_v3_topic"),
    path(TOPIC + "/partitions", kafka.v3_partitions, name="kafka_v3_partitions"),
    path(TOPIC + "/partitions/<int:partition>", kafka.v3_partition, name="kafka_v3_partition"),
    path(TOPIC + "/records", kafka.v3_records, name="kafka_v3_records"),
    path(CLUSTER + "/consumer-groups", kafka.v3_groups, name="kafka_v3_groups"),
    path(GROUP, kafka.v3_group, name="kafka_v3_group"),
    path(GROUP + "/lags", kafka.v3_lags, name="kafka_v3_lags"),
    path(KAFKA + "/topics", kafka.topics, name="kafka_topics"),
    path(KAFKA + "/topics/<str:topic>", kafka.topic, name="kafka_topic"),
    path(KAFKA + "/consumers/<str:group>", kafka.consumer_create, name="kafka_consumers"),
    # REST Proxy's documentation creates instances with a trailing slash.
    path(KAFKA + "/consumers/<str:group>/", kafka.consumer_create),
    path(INSTANCE, kafka.consumer_instance, name="kafka_instance"),
    path(INSTANCE + "/subscription", kafka.consumer_subscription, name="kafka_subscription"),
    path(INSTANCE + "/records", kafka.consumer_records, name="kafka_records"),
    path(INSTANCE + "/offsets", kafka.consumer_offsets, name="kafka_offsets"),
    path(INSTANCE + "/assignments", kafka.consumer_assignments, name="kafka_assignments"),
    # Anything else under a room's API: a JSON 404, as REST Proxy answers.
    re_path(r"^api/kafka/(?P<code>[^/]+)/(?P<rest>.*)$", kafka.unknown),
    # SQS (AWS JSON 1.0)
    path("api/sqs/", sqs_api.endpoint, name="sqs_api"),
    path("api/sqs", sqs_api.endpoint),
    re_path(rf"^api/sqs/{SQS_ACCOUNT}$", sqs_api.endpoint),
    path("api/sqs/<str:code>/", sqs_api.endpoint, name="sqs_api_room"),
    path("api/sqs/<str:code>", sqs_api.endpoint),
    re_path(rf"^api/sqs/(?P<code>[^/]+)/{SQS_ACCOUNT}$", sqs_api.endpoint),
]
