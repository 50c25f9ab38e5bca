from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: the overview page, doctor, maintenance pipelines and the beat schedule."""

    name = "ops"
    label = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"
