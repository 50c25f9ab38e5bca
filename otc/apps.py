from django.apps import AppConfig


class OtcConfig(AppConfig):
    """FINRA OTC weekly transparency data: captures, normalization, analytics."""

    name = "otc"
    verbose_name = "OTC transparency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from otc import health

        health.register()
