from django.apps import AppConfig


class DlqConfig(AppConfig):
    """The dead-letter queue: failed executions parked for retry and replay."""

    name = "dlq"
    verbose_name = "Dead letters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dlq import retention
        from dlq.metrics import register_open_gauge

        register_open_gauge()
        retention.register()
