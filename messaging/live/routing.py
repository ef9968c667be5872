from django.urls import re_path

from messaging.live.consumers import RoomConsumer

websocket_urlpatterns = [
    re_path(r"^ws/rooms/(?P<code>[A-Za-z0-9-]{1,16})/$", RoomConsumer.as_asgi()),
]
