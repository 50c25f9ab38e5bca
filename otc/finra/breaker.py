"""Circuit breaker around calls to FINRA."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pybreaker
import redis
from prometheus_client import REGISTRY, Gauge

from otc.finra.config import FinraClientConfig
from otc.finra.errors import FinraHTTPError

logger = logging.getLogger(__name__)

BREAKER_NAME = "finra"
#: Redis keys are ``<namespace>:pybreaker:<key>``.
DEFAULT_REDIS_NAMESPACE = "spine:finra"

STATE_CLOSED = pybreaker.STATE_CLOSED
STATE_HALF_OPEN = pybreaker.STATE_HALF_OPEN
STATE_OPEN = pybreaker.STATE_OPEN
STATE_VALUES = {STATE_CLOSED: 0, STATE_HALF_OPEN: 1, STATE_OPEN: 2}

_GAUGE_NAME = "spine_finra_circuit_state"


def _circuit_state_gauge() -> Gauge:
    """Create the gauge once per process; a re-import must not register it twice."""
    # prometheus_client has no public lookup by name; this dict is the registry's index.
    existing = REGISTRY._names_to_collectors.get(_GAUGE_NAME)
    if isinstance(existing, Gauge):
        return existing
    return Gauge(
        _GAUGE_NAME,
        "FINRA API circuit breaker state: 0 closed, 1 half-open, 2 open.",
        # Across processes (PROMETHEUS_MULTIPROC_DIR) the latest transition wins.
        multiprocess_mode="mostrecent",
    )


CIRCUIT_STATE_GAUGE = _circuit_state_gauge()


class _GaugeListener(pybreaker.CircuitBreakerListener):
    """Mirrors every state change into the Prometheus gauge."""

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        CIRCUIT_STATE_GAUGE.set(STATE_VALUES[new_state.name])
        logger.warning(
            "FINRA circuit breaker %s -> %s",
            old_state.name if old_state else None,
            new_state.name,
            extra={"breaker": cb.name, "state": new_state.name},
        )


def _storage(redis_url: str | None, namespace: str) -> pybreaker.CircuitBreakerStorage:
    if redis_url is None:
        return pybreaker.CircuitMemoryStorage(STATE_CLOSED)
    # pybreaker decodes bytes itself; short timeouts keep a Redis outage from
    # stalling FINRA calls (pybreaker then falls back to "closed").
    client = redis.Redis.from_url(
        redis_url, decode_responses=False, socket_connect_timeout=1.0, socket_timeout=1.0
    )
    try:
        return pybreaker.CircuitRedisStorage(STATE_CLOSED, client, namespace=namespace)
    except redis.RedisError as exc:
        logger.warning("Redis unreachable (%s); FINRA circuit breaker state is per process", exc)
        return pybreaker.CircuitMemoryStorage(STATE_CLOSED)


def build_breaker(
    *,
    fail_max: int,
    reset_timeout: float,
    redis_url: str | None = None,
    namespace: str = DEFAULT_REDIS_NAMESPACE,
) -> pybreaker.CircuitBreaker:
    """A new breaker named ``finra``; Redis-backed (shared) when ``redis_url`` is given.

    ``throw_new_error_on_trip`` is off: the call that trips the circuit raises its
    own error (e.g. the 503), and only later calls see the open circuit.
    """
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_timeout,
        exclude=[_is_caller_error],
        listeners=[_GaugeListener()],
        state_storage=_storage(redis_url, namespace),
        name=BREAKER_NAME,
        throw_new_error_on_trip=False,
    )
    CIRCUIT_STATE_GAUGE.set(STATE_VALUES.get(breaker.current_state, 0))
    return breaker


def _is_caller_error(exc: BaseException) -> bool:
    """A 4xx other than 429 is our request's fault, not a sign that FINRA is down."""
    return isinstance(exc, FinraHTTPError) and 400 <= exc.status < 500 and exc.status != 429


_process_breakers: dict[tuple[str | None, int, float], pybreaker.CircuitBreaker] = {}
_process_lock = threading.Lock()


def breaker_for(config: FinraClientConfig) -> pybreaker.CircuitBreaker:
    """The process-wide breaker for this config (clients come and go, the breaker stays)."""
    key = (config.redis_url, config.breaker_fail_max, config.breaker_reset_timeout)
    with _process_lock:
        breaker = _process_breakers.get(key)
        if breaker is None:
            breaker = _process_breakers[key] = build_breaker(
                fail_max=config.breaker_fail_max,
                reset_timeout=config.breaker_reset_timeout,
                redis_url=config.redis_url,
            )
        return breaker


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    """What health checks report about the circuit."""

    state: str
    #: When the circuit stops refusing calls; ``None`` unless it is open.
    open_until: datetime | None
    failures: int

    def as_dict(self) -> dict[str, str | int | None]:
        """JSON-ready form, e.g. for the readiness endpoint's details."""
        until = self.open_until.isoformat(timespec="seconds") if self.open_until else None
        return {"state": self.state, "open_until": until, "failures": self.failures}


def open_until(breaker: pybreaker.CircuitBreaker) -> datetime:
    """When an open circuit will let a trial call through (UTC)."""
    # pybreaker keeps opened_at on its storage and offers no public getter.
    opened_at = breaker._state_storage.opened_at
    if opened_at is None:
        opened_at = datetime.now(UTC)
    return opened_at + timedelta(seconds=breaker.reset_timeout)


def breaker_status(breaker: pybreaker.CircuitBreaker) -> BreakerStatus:
    """State ("closed", "open" or "half-open"), open-until time and failure count.

    pybreaker only moves an open circuit to half-open when the next call arrives;
    an open circuit whose timeout has passed is reported as "half-open" here,
    because the next call will be the trial. Reading the state also syncs this
    process's gauge with a state another process stored in Redis.
    """
    state = breaker.state.name
    until: datetime | None = None
    if state == STATE_OPEN:
        until = open_until(breaker)
        if datetime.now(UTC) >= until:
            state, until = STATE_HALF_OPEN, None
    return BreakerStatus(state=state, open_until=until, failures=breaker.fail_counter)
