"""The JSON APIs, at the site root: `api/rooms` and one Kafka REST API per room.

`messaging/urls.py` includes these with `path("", include("messaging.api.urls"))`.
Paths follow Confluent REST Proxy's, under the room's base `api/kafka/<code>`.
"""

from django.urls import path, re_path

from messaging.api import rest_proxy as kafka
from messaging.api import rooms

BASE = "api/kafka/<str:code>"
CLUSTER = BASE + "/v3/clusters/<str:cluster_id>"
TOPIC = CLUSTER + "/topics/<str:topic>"
GROUP = CLUSTER + "/consumer-groups/<str:group>"
INSTANCE = BASE + "/consumers/<str:group>/instances/<str:name>"

urlpatterns = [
    path("api/rooms", rooms.room_create, name="api_rooms"),
    path("api/rooms/", rooms.room_create),
    path(BASE, kafka.root, name="kafka_root"),
    # v3
    path(BASE + "/v3/clusters", kafka.clusters, name="kafka_clusters"),
    path(CLUSTER, kafka.cluster, name="kafka_cluster"),
    path(CLUSTER + "/topics", kafka.v3_topics, name="kafka_v3_topics"),
    path(TOPIC, kafka.v3_topic, name="kafka_v3_topic"),
    path(TOPIC + "/partitions", kafka.v3_partitions, name="kafka_v3_partitions"),
    path(TOPIC + "/partitions/<int:partition>", kafka.v3_partition, name="kafka_v3_partition"),
    path(TOPIC + "/records", kafka.v3_records, name="kafka_v3_records"),
    path(CLUSTER + "/consumer-groups", kafka.v3_groups, name="kafka_v3_groups"),
    path(GROUP, kafka.v3_group, name="kafka_v3_group"),
    path(GROUP + "/lags", kafka.v3_lags, name="kafka_v3_lags"),
    # v2
    path(BASE + "/topics", kafka.topics, name="kafka_topics"),
    path(BASE + "/topics/<str:topic>", kafka.topic, name="kafka_topic"),
    path(BASE + "/consumers/<str:group>", kafka.consumer_create, name="kafka_consumers"),
    # REST Proxy's documentation creates instances with a trailing slash.
    path(BASE + "/consumers/<str:group>/", kafka.consumer_create),
    path(INSTANCE, kafka.consumer_instance, name="kafka_instance"),
    path(INSTANCE + "/subscription", kafka.consumer_subscription, name="kafka_subscription"),
    path(INSTANCE + "/records", kafka.consumer_records, name="kafka_records"),
    path(INSTANCE + "/offsets", kafka.consumer_offsets, name="kafka_offsets"),
    path(INSTANCE + "/assignments", kafka.consumer_assignments, name="kafka_assignments"),
    # Anything else under a room's API: a JSON 404, as REST Proxy answers.
    re_path(r"^api/kafka/(?P<code>[^/]+)/(?P<rest>.*)$", kafka.unknown),
]
