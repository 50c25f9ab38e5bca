from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ExecutionsConfig(AppConfig):
    """Tracked executions: the ledger, the Dispatcher, the runner and its backends."""

    name = "executions"
    verbose_name = "Executions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every app's pipelines module registers its pipelines on import; importing them
        # here means the registry is complete in web, worker and command processes alike.
        autodiscover_modules("pipelines")
        from executions import api_errors, checks, health  # noqa: F401 - checks registers itself

        health.register()
        api_errors.register()
