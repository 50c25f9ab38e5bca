"""The project package as an installed app, for its management commands."""

from django.apps import AppConfig


class SpineAppConfig(AppConfig):
    name = "spine"
    verbose_name = "Market Spine"
