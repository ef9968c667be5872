from django.urls import re_path

from messaging.live.consumers import RoomConsumer, websocket_not_found

websocket_urlpatterns = [
    re_path(r"^ws/rooms/(?P<code>[A-Za-z0-9-]{1,16})/$", RoomConsumer.as_asgi()),
    # Last: any other path (`ws/rooms/../x/`, a NUL, a code too long) is a plain 404, not the
    # router's "No route found" exception and an HTTP 500.
    re_path(r"", websocket_not_found),
]
