"""The SQS endpoint's URLs, at the site root.

Include them with `path("", include("messaging.sqs_api.urls"))`.

An SDK posts every action to its `endpoint_url`: `api/sqs/` (the room is the access key id) or
`api/sqs/<code>/` (the room is in the path). botocore drops a trailing slash the endpoint URL
did not have, so both spellings are served. Some SDKs post to the queue's URL instead
(`<endpoint>/000000000000/<queue name>`): the same view answers there too.
"""

from django.urls import path, re_path

from messaging.sqs_api import views

ACCOUNT = r"(?P<account>\d{12})/(?P<name>[^/]+)/?"

urlpatterns = [
    path("api/sqs/", views.endpoint, name="sqs_api"),
    path("api/sqs", views.endpoint),
    re_path(rf"^api/sqs/{ACCOUNT}$", views.endpoint),
    path("api/sqs/<str:code>/", views.endpoint, name="sqs_api_room"),
    path("api/sqs/<str:code>", views.endpoint),
    re_path(rf"^api/sqs/(?P<code>[^/]+)/{ACCOUNT}$", views.endpoint),
]
