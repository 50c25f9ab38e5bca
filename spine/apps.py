"""The project package as an installed app: its management commands and the console's name."""

from django.apps import AppConfig

SITE_NAME = "Market Spine"


class SpineAppConfig(AppConfig):
    name = "spine"
    verbose_name = SITE_NAME

    def ready(self) -> None:
        from django.contrib import admin

        admin.site.site_header = SITE_NAME
        admin.site.site_title = SITE_NAME
        admin.site.index_title = "Operations console"
