"""Who may do what in a room: checked on the server for every action, whatever the page shows.

Sandboxes and lesson rooms are open: anyone with the code plays. A classroom belongs to its
instructor (the room's owner), who may do everything. A student (a browser session that joined
with a name) may do only what the instructor unlocked, and to a consumer only if it is their own.
Anyone else may watch a classroom, not touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from django.conf import settings

from messaging.errors import Invalid, LogLabError
from messaging.infra.rates import buckets, client_ip, retry_seconds
from messaging.models import Member, Room, Student, default_student_permissions, join_code_normalise
from messaging.selectors import room_get, student_for_session

if TYPE_CHECKING:
    from django.http import HttpRequest

# What an instructor can lock or unlock for students, with the words the page uses for it.
STUDENT_ACTIONS: dict[str, str] = {
    "produce": "produce records",
    "join": "join and leave a consumer group",
    "crash": "crash their consumer",
    "settings": "change topics, groups and producers",
    "clients": "connect their own code (REST and SQS APIs; each call obeys the other locks)",
}
# Only the instructor ever does these in a classroom: the clock, resetting the room, removing
# a student, the locks themselves, follow-me and running a lesson.
DRIVE = "drive"

ActorKind = Literal["owner", "student", "visitor"]


class Forbidden(LogLabError):
    status = 403
    code = "forbidden"


class TooManyRequests(LogLabError):
    status = 429
    code = "rate_limited"
    # False when waiting cannot help: more at once than the allowance ever holds.
    retryable = True
    # Whole seconds to wait (the message says the same number): `Retry-After`.
    retry_after: int | None = None


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    student: Student | None = None

    @property
    def is_owner(self) -> bool:
        return self.kind == "owner"


def actor_for(*, room: Room, user=None, session_key: str | None = None) -> Actor:
    """Who is asking, in `room`: its owner, one of its students, or a visitor."""
    if user is not None and getattr(user, "is_authenticated", False) and room.owner_id == user.pk:
        return Actor(kind="owner")
    # A removed student's session is nobody in the room any more.
    student = student_for_session(room=room, session_key=session_key)
    if student is not None:
        return Actor(kind="student", student=student)
    return Actor(kind="visitor")


def actor_for_request(request, room: Room) -> Actor:
    return actor_for(room=room, user=request.user, session_key=request.session.session_key)


def student_permissions(room: Room) -> dict[str, bool]:

    stored = room.student_permissions or {}
    return {
        action: bool(stored.get(action, default))
        for action, default in default_student_permissions().items()
    }


def room_permission_check(
    *, room: Room, actor: Actor, action: str, member: Member | None = None
) -> None:
    """Raise Forbidden unless `actor` may do `action` in `room` (to `member`, if one is named).

    `action` is one of STUDENT_ACTIONS or DRIVE. Raises with a sentence the page can show.
    """
    if action != DRIVE and action not in STUDENT_ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if room.kind != Room.Kind.CLASSROOM or actor.is_owner:
        return
    if actor.kind == "visitor":
        raise Forbidden(
            "This is a classroom: join it with your name first (only its students and its "
            "instructor can act in it)."
        )
    if action == DRIVE:
        raise Forbidden("Only the instructor can do that in this classroom.")
    if not student_permissions(room).get(action, False):
        raise Forbidden(
            f"The instructor has locked this: students cannot {STUDENT_ACTIONS[action]} right now."
        )
    if member is not None and (actor.student is None or actor.student.member_id != member.pk):
        raise Forbidden("You can only do that to your own consumer.")


def room_capabilities(room: Room, actor: Actor) -> dict[str, bool]:
    """What `actor` may do in `room`, per action: what the pages draw as enabled or locked.

    The server checks each action again (`room_permission_check`); this only shapes the page.
    """
    if room.kind != Room.Kind.CLASSROOM or actor.is_owner:
        return {**dict.fromkeys(STUDENT_ACTIONS, True), DRIVE: True}
    if actor.kind == "visitor":
        return {**dict.fromkeys(STUDENT_ACTIONS, False), DRIVE: False}
    return {**student_permissions(room), DRIVE: False}


# --- rate limits on students ------------------------------------------------------------------

# Which allowance an action spends. Producing is limited per record; joining and leaving a
# group per request, so nobody can make a group rebalance without pause; everything else a
# student may do shares a looser allowance.
RATE_PRODUCE, RATE_MEMBERSHIP, RATE_ACTION = "produce", "membership", "action"
RATE_FOR_ACTION = {"produce": RATE_PRODUCE, "join": RATE_MEMBERSHIP}
RATE_WORDS = {
    RATE_PRODUCE: "produce at most {rate:g} records per second",
    RATE_MEMBERSHIP: "join or leave a group at most {rate:g} times per second",
    RATE_ACTION: "act at most {rate:g} times per second",
}


def student_rate(kind: str) -> float:
    return float(
        {
            RATE_PRODUCE: settings.LOGLAB_STUDENT_PRODUCE_PER_SECOND,
            RATE_MEMBERSHIP: settings.LOGLAB_STUDENT_JOINS_PER_SECOND,
            RATE_ACTION: settings.LOGLAB_STUDENT_ACTIONS_PER_SECOND,
        }[kind]
    )


def rate_check(*, key: tuple, kind: str, cost: int = 1, who: str = "students") -> None:
    """Spend `cost` of `key`'s allowance of `kind`, or raise TooManyRequests (429) saying when
    to retry. Every server process shares the buckets (messaging/infra/rates.py)."""
    rate = student_rate(kind)
    wait = buckets.take((kind, *key), rate=rate, burst=max(rate, 1.0), cost=cost)
    if wait:
        raise too_many(
            f"Slow down: {who} may {RATE_WORDS[kind].format(rate=rate)} in this classroom.", wait
        )


def too_many(message: str, wait: float) -> TooManyRequests:
    """A 429 whose sentence and `Retry-After` say the same whole number of seconds; one no
    wait can help (`wait` infinite: more at once than the allowance holds) asks for less."""
    never = wait == float("inf")
    seconds = retry_seconds(wait)
    retry = "Send fewer at a time." if never else f"Try again in {seconds} s."
    error = TooManyRequests(f"{message} {retry}")
    error.retryable = not never
    error.retry_after = None if never else seconds
    return error


def api_produce_rate_check(*, request: HttpRequest, room: Room, count: int) -> None:
    """A script producing into a classroom (REST Proxy or SQS) is held to a student's produce
    rate, per client address. Raises TooManyRequests; `retryable` is False for a batch larger
    than the allowance, which no retry can get through."""
    if room.kind != Room.Kind.CLASSROOM:
        return

    # Keyed by the code, not the pk: a deleted room's pk can come back, its code does not.
    rate_check(
        key=("api", room.code, client_ip(request)), kind=RATE_PRODUCE, cost=count, who="scripts"
    )


def student_rate_check(*, room: Room, actor: Actor, kind: str, cost: int = 1) -> None:
    """Students' actions are rate limited (the instructor's and sandboxes' are not)."""
    if actor.kind != "student" or actor.student is None or room.kind != Room.Kind.CLASSROOM:
        return
    # Keyed by the code, not the pk: a deleted room's pk can come back, its code does not.
    rate_check(key=(room.code, actor.student.pk), kind=kind, cost=cost)


def request_act(
    request,
    room: Room,
    action: str,
    *,
    member: Member | None = None,
    rate: str | None = None,
    cost: int = 1,
) -> Actor:
    """The one line at the top of every write view: who is asking, whether they may do
    `action` in `room` (to `member`), and their rate allowance spent. Raises Forbidden (403) or
    TooManyRequests (429) with a sentence the page shows."""
    actor = actor_for_request(request, room)
    room_permission_check(room=room, actor=actor, action=action, member=member)
    student_rate_check(
        room=room, actor=actor, kind=rate or RATE_FOR_ACTION.get(action, RATE_ACTION), cost=cost
    )
    return actor


def room_for_action(
    request, code: str, action: str, *, rate: str | None = None, cost: int = 1
) -> Room:
    """The room of `code`, once `request_act` let the person asking do `action` in it."""
    room = room_get(code=code)
    request_act(request, room, action, rate=rate, cost=cost)
    return room


CLIENTS_LOCKED = (
    "The instructor has locked this classroom's APIs: students cannot connect their own code "
    "(REST and SQS) right now."
)

# --- the APIs: every call is a student's button -----------------------------------------------

# The locks each API call passes, besides `clients` (which only opens the APIs): the same as
# the student's button that does the same thing. Reads pass none. REST Proxy's are keyed by the
# view (messaging/api/kafka_rest.py) and method, SQS's by action; both adapters and the tests
# read this one table, and kafka_rest refuses to define a view missing from it.
REST_PROXY_LOCKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("root", "GET"): (),
    ("clusters", "GET"): (),
    ("cluster", "GET"): (),
    ("v3_topics", "GET"): (),
    ("v3_topics", "POST"): ("settings",),  # CreateTopics: the board's "New topic"
    ("v3_topic", "GET"): (),
    ("v3_partitions", "GET"): (),
    ("v3_partition", "GET"): (),
    ("v3_records", "POST"): ("produce",),
    ("v3_groups", "GET"): (),
    ("v3_group", "GET"): (),
    ("v3_lags", "GET"): (),
    ("topics", "GET"): (),
    ("topic", "GET"): (),
    ("topic", "POST"): ("produce",),
    # A consumer instance joins the group (on its first poll); deleting it leaves.
    ("consumer_create", "POST"): ("join",),
    ("consumer_instance", "DELETE"): ("join",),
    ("consumer_subscription", "GET"): (),
    ("consumer_subscription", "POST"): ("join",),
    ("consumer_records", "GET"): ("join",),  # a poll: takes partitions in the rebalance
    # A student's commit button needs `join`; the issue groups committing with crashing (both
    # decide what is delivered again), so the crash lock stops a script's commits too.
    ("consumer_offsets", "POST"): ("join", "crash"),
    ("consumer_assignments", "GET"): (),
}
SQS_LOCKS: dict[str, tuple[str, ...]] = {
    "CreateQueue": ("settings",),
    "DeleteQueue": ("settings",),
    "SetQueueAttributes": ("settings",),
    "PurgeQueue": ("settings",),
    "GetQueueUrl": (),
    "ListQueues": (),
    "GetQueueAttributes": (),
    "SendMessage": ("produce",),
    "SendMessageBatch": ("produce",),
    "ReceiveMessage": ("join",),
    "DeleteMessage": ("join",),
    "DeleteMessageBatch": ("join",),
    "ChangeMessageVisibility": ("join",),
    "ChangeMessageVisibilityBatch": ("join",),
}


def api_lock_check(room: Room, locks: tuple[str, ...]) -> None:
    """Raise Forbidden unless a script may make a call that passes `locks` in `room`.

    Scripts carry no session: in a classroom they are held to what students may do. The
    `clients` lock opens the APIs; each call then passes the same locks as a student's button.
    """
    if room.kind != Room.Kind.CLASSROOM:
        return
    allowed = student_permissions(room)
    if not allowed["clients"]:
        raise Forbidden(CLIENTS_LOCKED)
    for lock in locks:
        if not allowed[lock]:
            raise Forbidden(
                f"The instructor has locked this: students (and their code) cannot "
                f"{STUDENT_ACTIONS[lock]} right now."
            )


# --- what the page shows to whoever is looking ------------------------------------------------


class RoomViewer:
    """Who is looking at a room's page, worked out only if a template asks (`viewer` in every
    template's context): base.html marks a student's pages to follow the instructor, and the
    board draws locked controls as locked. Fragments that never ask cost no query."""

    def __init__(self, request) -> None:
        self.request = request

    @cached_property
    def room(self) -> Room | None:
        match = getattr(self.request, "resolver_match", None)
        code = match.kwargs.get("code") if match else None
        if not code:
            return None

        return Room.objects.filter(code=join_code_normalise(str(code))).first()

    @cached_property
    def actor(self) -> Actor | None:
        return actor_for_request(self.request, self.room) if self.room is not None else None

    @property
    def kind(self) -> str:
        return self.actor.kind if self.actor else ""

    @property
    def is_classroom(self) -> bool:
        return self.room is not None and self.room.kind == Room.Kind.CLASSROOM

    @property
    def follows(self) -> bool:
        """A student's page in a classroom follows where the instructor sends it."""
        return self.is_classroom and self.kind == "student"

    @property
    def follow_path(self) -> str:
        return self.room.follow_path if self.follows else ""

    @property
    def member_pk(self) -> int | None:
        """The viewer's own consumer, if they are a student with one."""
        student = self.actor.student if self.actor else None
        return student.member_id if student else None

    @cached_property
    def can(self) -> dict[str, bool]:
        if self.room is None or self.actor is None:
            return {**dict.fromkeys(STUDENT_ACTIONS, True), DRIVE: True}
        return room_capabilities(self.room, self.actor)

    @property
    def lock_note(self) -> str:
        if self.kind == "visitor":
            return "read-only: join the classroom to take part"
        return "locked by the instructor"


def room_viewer(request) -> dict:
    """Template context processor (config/settings.py)."""
    return {"viewer": RoomViewer(request)}


def classroom_lesson_check(room: Room, actor: Actor) -> Room:
    if room.kind != Room.Kind.CLASSROOM:
        raise Invalid("Only a classroom runs a lesson for its students.")
    room_permission_check(room=room, actor=actor, action=DRIVE)
    if not actor.is_owner:  # DRIVE is open in sandboxes; running a lesson never is
        raise Forbidden("Only the instructor can run a lesson in this classroom.")
    return room
