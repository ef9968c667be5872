from django.urls import include, path

from messaging import views

urlpatterns = [
    path("", views.home, name="home"),
    path("rooms/new/", views.room_new, name="room_new"),
    path("join/", views.room_join, name="room_join"),
    path("r/<str:code>/", views.room_board, name="room"),
    path("r/<str:code>/topics/", views.room_topics, name="room_topics"),
    path("r/<str:code>/state.json", views.room_state, name="room_state"),
    path("r/<str:code>/produce/", views.record_produce, name="record_produce"),
    path("r/<str:code>/topics/new/", views.topic_new, name="topic_new"),
    path("r/<str:code>/queues/", include("messaging.queues_urls")),
]
