from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    """Tracked executions: the ledger, the Dispatcher, the runner and its backends."""

    name = "executions"
    verbose_name = "Executions"
    default_auto_field = "django.db.models.BigAutoField"
