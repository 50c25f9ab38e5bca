from django.apps import AppConfig


class OtcConfig(AppConfig):
    """FINRA OTC weekly transparency data: captures, normalization, analytics."""

    name = "otc"
    verbose_name = "OTC transparency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from otc import api_lines, health
        from otc.finra.config import environment_config

        # A bad FINRA_* variable stops start-up with one config error, like the others.
        environment_config()
        health.register()
        health.register_archive()
        api_lines.register()
