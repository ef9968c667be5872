"""`manage.py rooms_expire`: delete rooms idle longer than LOGLAB_ROOM_IDLE_HOURS, with their data.

Run it from cron, or leave it to the sweep that room creation triggers (at most every 10 min
per server process). The demo room is never expired.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from messaging.services.rooms import rooms_expire


class Command(BaseCommand):
    help = "Delete rooms idle longer than LOGLAB_ROOM_IDLE_HOURS (the demo room stays)."

    def handle(self, *args, **options) -> None:
        deleted = rooms_expire()
        hours = settings.LOGLAB_ROOM_IDLE_HOURS
        for code, title in deleted:
            self.stdout.write(f"deleted {code}" + (f" ({title})" if title else ""))
        self.stdout.write(f"{len(deleted)} room(s) idle for more than {hours:g} h deleted.")
