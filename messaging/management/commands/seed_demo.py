from django.core.management.base import BaseCommand

from messaging.services.seeds import room_seed_demo


class Command(BaseCommand):
    help = "Create the demo room (topic 'orders', 3 partitions, a few keyed records) once."

    def handle(self, *args, **options) -> None:
        room, created = room_seed_demo()
        verb = "Created" if created else "Found"
        self.stdout.write(f"{verb} the demo room {room.code}: /r/{room.code}/")
