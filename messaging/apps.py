from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "LogLab messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Plumbing imports no model: the rate limits' store is chosen, and given its model, here.
        from django.conf import settings

        from messaging.infra import rates
        from messaging.models import RateBucket
        from messaging.services import events, timeline

        if (
            settings.LOGLAB_TIMELINE
            and timeline.timeline_after_commit not in events.committed_hooks
        ):
            events.committed_hooks.append(timeline.timeline_after_commit)
        rates.buckets.use(
            rates.store_for(
                backend=settings.LOGLAB_RATE_BACKEND, redis_url=settings.REDIS_URL, model=RateBucket
            )
        )
