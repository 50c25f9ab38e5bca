"""Admin building blocks shared by the apps (nothing is registered here).

:class:`ReadOnlyAdmin` is for history that only pipelines and services write: the
execution ledger, captures and analytics. It refuses add, change and delete, and
lists big tables without a full ``COUNT(*)`` (:mod:`spine.paginators`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from spine.paginators import EstimatedCountPaginator


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only; counted without full scans on big tables."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
