"""The lesson files' small markup (`code` spans, paragraphs, lists) as data the templates escape,
and which board form fills in a solution step."""

from __future__ import annotations

from typing import Any

from messaging.services.lesson_steps import group_defaults
from messaging.services.simulation import MAX_STEP_MS


def inline_parts(text: str) -> list[dict[str, Any]]:
    """`code` spans and plain text, in order."""
    return [
        {"text": part, "code": index % 2 == 1}
        for index, part in enumerate(str(text).split("`"))
        if part
    ]


def text_blocks(text: str) -> list[dict[str, Any]]:
    """Paragraphs (blank lines between), and small diagrams: paragraphs whose every line is
    indented by four spaces, shown preformatted."""
    blocks = []
    for paragraph in str(text).strip("\n").split("\n\n"):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if not lines:
            continue
        if all(line.startswith("    ") for line in lines):
            blocks.append({"pre": True, "text": "\n".join(line[4:] for line in lines)})
        else:
            blocks.append({"pre": False, "parts": inline_parts(" ".join(x.strip() for x in lines))})
    return blocks


def step_fill(step, view: str) -> dict[str, Any] | None:
    """The board (or queues page) form that does `step`, and what goes in it; None when the
    page has no control for it (the panel then offers to play it)."""
    a, do = step.args, step.do
    times = int(a.get("count", 1) or 1)
    if view == "share":
        return None  # the share groups page has no lesson form fills: the panel plays steps
    if view == "queues":
        forms = {
            "sqs_send": lambda: {
                "form": "sqs_send",
                "fields": {
                    "queue": a["queue"],
                    "body": a.get("body", ""),
                    "message_group_id": a.get("group_id", ""),
                    "deduplication_id": a.get("dedup_id", ""),
                },
                "times": times,
            },
            "sqs_receive": lambda: {
                "form": "sqs_receive",
                "fields": {"queue": a["queue"], "max_messages": a.get("max", 1)},
            },
            "sqs_delete": lambda: {
                "form": "sqs_delete",
                "queue": a["queue"],
                "group": a["group_id"],
            },
            "classic_declare": lambda: {
                "form": "classic_queue_new",
                "fields": {"name": a["queue"]},
            },
            "classic_exchange": lambda: {
                "form": "classic_exchange_new",
                "fields": {"name": a["exchange"], "type": a["type"]},
            },
            "classic_bind": lambda: {
                "form": "classic_bind",
                "fields": {
                    "queue": a["queue"],
                    "exchange": a["exchange"],
                    "routing_key": a.get("routing_key", ""),
                },
            },
            "classic_publish": lambda: {
                "form": "classic_publish",
                "fields": {
                    "exchange": a.get("exchange", ""),
                    "routing_key": a.get("routing_key", ""),
                    "body": a.get("body", ""),
                },
                "times": times,
            },
            # Two presses on the page: basic.consume with a prefetch of `count`, then an Ack
            # for each delivery (the page's script picks whichever comes next).
            "classic_consume": lambda: {
                "form": "classic_consume",
                "queue": a["queue"],
                "fields": {
                    "queue": a["queue"],
                    "consumer_tag": f"{a['queue']}-reader"[:64],
                    "prefetch_count": times,
                },
                "times": times,
            },
            "advance": lambda: (
                {"form": "queues_clock", "button": str(a["ms"])}
                if str(a["ms"]) in ("1000", "10000", "30000", "300000")
                else None
            ),
        }
        make = forms.get(do)
        return make() if make else None
    if do == "produce" and not a.get("tombstone"):
        fields = {
            "topic": a["topic"],
            "key": a.get("key", ""),
            "value": a.get("value", ""),
            "partition": a.get("partition", ""),
        }
        if "acks" in a:
            fields["acks"] = {"0": "0", "1": "1", "all": "-1"}[a["acks"]]
        return {"form": "produce", "fields": fields, "times": times}
    if do == "create_topic":
        fields = {"name": a["name"], "partitions": a["partitions"]}
        for name in ("replication_factor", "min_insync_replicas"):
            if name in a:
                fields[name] = a[name]
        if a.get("unclean_leader_election_enable"):
            fields["unclean_leader_election_enable"] = "on"
        return {"form": "topic_new", "fields": fields}
    if do == "broker":
        return {"form": "broker", "broker": a["broker"], "button": a["state"]}
    if do == "brokers":
        return {"form": "brokers_count", "fields": {"brokers": a["count"]}}
    if do == "elect_preferred":
        return {"form": "leaders_elect"}
    if do == "add_partitions":
        return {
            "form": "partitions_add",
            "topic": a["topic"],
            "fields": {"partitions": a["partitions"]},
        }
    if do == "configure_topic":
        fields = {}
        if "retention_ms" in a:
            ms = a["retention_ms"]
            fields["retention_s"] = -1 if ms < 0 else ms // 1000
        for name in ("cleanup_policy", "segment_records", "min_insync_replicas"):
            if name in a:
                fields[name] = a[name]
        if "unclean_leader_election_enable" in a:
            fields["unclean_leader_election_enable"] = (
                "on" if a["unclean_leader_election_enable"] else ""
            )
        return {"form": "topic_config", "topic": a["topic"], "fields": fields}
    if do == "create_group":
        settings = group_defaults(a)
        if "session_timeout_ms" in settings:
            return None  # the board's form has no session.timeout.ms
        return {
            "form": "group_new",
            "fields": {
                "group_id": a["group"],
                "topics": list(a["topics"]),
                "assignor": settings["assignor"],
                "protocol": settings["protocol"],
                "delivery": settings["delivery"],
                "auto_offset_reset": settings["auto_offset_reset"],
            },
        }
    if do == "join" and a.get("rate", 1.0) == 1.0:
        fields = {"client_id": a.get("client_id") or a["group"]}
        if a.get("instance_id"):
            fields["group_instance_id"] = a["instance_id"]
        return {"form": "member_new", "group": a["group"], "fields": fields, "times": times}
    if do in ("leave", "crash", "speed"):
        fill = {
            "form": "member",
            "group": a["group"],
            "consumer": a.get("consumer", "last"),
            "button": do,
        }
        if do == "speed":
            fill["fields"] = {"rate": a["rate"]}
        return fill
    if do == "advance" and a["ms"] <= MAX_STEP_MS:
        return {"form": "clock", "button": "step", "fields": {"step_ms": a["ms"]}}
    if do == "reset_offsets":
        value = a.get("value", "")
        if a["option"] == "by-duration" and value != "":
            value = int(value) // 1000  # the form asks for seconds
        return {
            "form": "offsets_reset",
            "group": a["group"],
            "fields": {"option": a["option"], "value": value, "execute": "1"},
        }
    return None
