"""The queue views of a room, mounted under `r/<code>/queues/` by messaging/urls.py."""

from django.urls import path

from messaging import queues_views as views

urlpatterns = [
    path("", views.queues_page, name="queues"),
    path("fragment/", views.queues_fragment, name="queues_fragment"),
    path("side-by-side/", views.side_by_side, name="side_by_side"),
    path("side-by-side/fragment/", views.side_by_side_fragment, name="side_by_side_fragment"),
    path("side-by-side/mirror/", views.mirror, name="queues_mirror"),
    path("clock/step/", views.queues_clock_step, name="queues_clock_step"),
    path("sqs/new/", views.sqs_queue_new, name="sqs_queue_new"),
    path("sqs/send/", views.sqs_send, name="sqs_send"),
    path("sqs/receive/", views.sqs_receive, name="sqs_receive"),
    path("sqs/delete/", views.sqs_delete, name="sqs_delete"),
    path("sqs/visibility/", views.sqs_change_visibility, name="sqs_change_visibility"),
    path("sqs/purge/", views.sqs_purge, name="sqs_purge"),
    path("classic/publish/", views.classic_publish, name="classic_publish"),
    path("classic/consume/", views.classic_consume, name="classic_consume"),
    path("classic/ack/", views.classic_ack, name="classic_ack"),
    path("classic/nack/", views.classic_nack, name="classic_nack"),
    path("classic/close/", views.classic_close, name="classic_close"),
    path("classic/queues/new/", views.classic_queue_new, name="classic_queue_new"),
    path("classic/exchanges/new/", views.classic_exchange_new, name="classic_exchange_new"),
    path("classic/bind/", views.classic_bind, name="classic_bind"),
]
