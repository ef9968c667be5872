from django.urls import include, path

from messaging import controls, views

urlpatterns = [
    path("", views.home, name="home"),
    path("about/", views.fidelity, name="fidelity"),
    path("rooms/new/", views.room_new, name="room_new"),
    path("join/", views.room_join, name="room_join"),
    path("r/<str:code>/", views.room_board, name="room"),
    path("r/<str:code>/state.json", views.room_state, name="room_state"),
    path("r/<str:code>/produce/", views.record_produce, name="record_produce"),
    path("r/<str:code>/topics/new/", views.topic_new, name="topic_new"),
    path("r/<str:code>/board/", views.room_live, name="room_live"),
    path("r/<str:code>/clock/", controls.clock_control, name="clock_control"),
    path("r/<str:code>/producers/new/", controls.producer_new, name="producer_new"),
    path("r/<str:code>/producers/<int:pk>/", controls.producer_control, name="producer_control"),
    path("r/<str:code>/groups/new/", controls.group_new, name="group_new"),
    path("r/<str:code>/groups/<int:pk>/members/", controls.member_new, name="member_new"),
    path("r/<str:code>/groups/<int:pk>/reset/", controls.offsets_reset, name="offsets_reset"),
    path("r/<str:code>/members/<int:pk>/", controls.member_control, name="member_control"),
    path("r/<str:code>/topics/<int:pk>/partitions/", controls.partitions_add,
         name="partitions_add"),
    path("r/<str:code>/topics/<int:pk>/config/", controls.topic_config, name="topic_config"),
    path("r/<str:code>/queues/", include("messaging.queues_urls")),
    path("", include("messaging.api.urls")),
    path("", include("messaging.sqs_api.urls")),
    path("", include("messaging.classroom_urls")),
    path("", include("messaging.lesson_urls")),
]
