"""A lean event engine with SimPy 4's exact scheduling semantics, for :mod:`.pipeline`.

The pipeline's timing depends on the order in which events of one cycle are processed (two DRAM
requests made in the same cycle are served in the order they were created), so a faster engine
must reproduce SimPy's order event for event. This module implements exactly the subset the
pipeline uses -- :class:`Environment` (``now``, ``timeout``, ``process``, ``run``), a capacity-1
:class:`Resource` (``request()`` as a context manager, ``count``, ``queue``), :class:`Container`
(``get``/``put`` of amounts, ``level``) and the unbounded :class:`Store` (``get``/``put``,
``items``) -- with SimPy 4.1's rules, none of its generality:

- events are processed in ``(time, priority, creation id)`` order, priority 0 for a process's
  start, 1 for everything else; an event's callbacks run in the order they were added (kept
  as a FIFO of the current time plus a heap of future timeouts: :class:`Environment`);
- a resource request/put/get is queued, its resource's *other* side is re-checked when it is
  processed, and the queue is scanned when it is created (a Resource and a Store stop after the
  first queued event, a Container goes on while events succeed: ``_do_put``/``_do_get`` return
  values of SimPy 4);
- a process resumes when the event it waits on is processed, and goes on at once with an event
  that was processed already.

What it leaves out (unused by the pipeline): failing events, interrupts, conditions, process
return values. :mod:`.pipeline` runs on it by default; ``tests/test_sim.py`` compares every field
of its results with SimPy's on random programs and real layers.
"""
from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from itertools import count
from typing import Any, Callable, Generator

_PENDING = object()


class Event:
    """An event: ``callbacks`` until processed (then ``None``), ``value`` once triggered."""

    __slots__ = ("env", "callbacks", "value")

    def __init__(self, env: "Environment", callbacks: list | None = None):
        self.env = env
        self.callbacks: list[Callable[["Event"], None]] | None = [] if callbacks is None else callbacks
        self.value: Any = _PENDING

    @property
    def triggered(self) -> bool:
        return self.value is not _PENDING

    def succeed(self, value: Any = None) -> "Event":
        self.value = value
        self.env._now_queue.append(self)
        return self


class _Process:
    """Drives a generator: resumed with the value of each event it yields, once processed."""

    __slots__ = ("env", "send", "resume")

    def __init__(self, env: "Environment", gen: Generator[Event, Any, Any]):
        if env._running:
            raise RuntimeError("lean_des: processes must be created before Environment.run()")
        self.env, self.send = env, gen.send
        self.resume = self._resume  # bound once: appended to every event the process waits on
        start = Event(env)
        start.value = None
        start.callbacks.append(self.resume)  # type: ignore[union-attr]
        env._starts.append(start)  # SimPy's Initialize: URGENT, before every other event of time 0

    def _resume(self, event: Event) -> None:
        send = self.send
        while True:
            try:
                event = send(event.value)
            except StopIteration:
                return  # nobody waits on a pipeline process: its own completion event is not needed
            callbacks = event.callbacks
            if callbacks is not None:
                callbacks.append(self.resume)
                return


class Environment:
    """Time, the event queues and the factories the pipeline uses.

    SimPy processes events in ``(time, priority, creation id)`` order. Here the events of the
    current time are a FIFO (:attr:`_now_queue`) and only timeouts with a positive delay go to a
    heap of ``(time, creation id, event)``: every event triggered at time ``t`` is created at
    ``t`` (so after every timeout that fires at ``t``, which was created earlier), and when time
    advances to ``t`` the queue is empty, so moving the heap's events of time ``t`` to the queue
    (in heap order) and then appending new ones in creation order is SimPy's order. Process
    starts (priority 0) are created before :meth:`run` and run first, in creation order."""

    def __init__(self) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, Event]] = []
        self._now_queue: deque[Event] = deque()
        self._starts: list[Event] = []
        self._eid = count()
        self._running = False

    def timeout(self, delay: int) -> Event:
        ev = Event(self)
        ev.value = None
        if delay:
            heappush(self._heap, (self.now + delay, next(self._eid), ev))
        else:
            self._now_queue.append(ev)
        return ev

    def process(self, gen: Generator[Event, Any, Any]) -> None:
        _Process(self, gen)

    def run(self) -> None:
        self._running = True
        queue, heap = self._now_queue, self._heap
        queue.extendleft(reversed(self._starts))
        self._starts = []
        popleft = queue.popleft
        while True:
            while queue:
                event = popleft()
                callbacks, event.callbacks = event.callbacks, None
                for cb in callbacks:  # type: ignore[union-attr]
                    cb(event)
            if not heap:
                break
            t = heap[0][0]
            self.now = t
            while heap and heap[0][0] == t:
                queue.append(heappop(heap)[2])


class _Queued:
    """A resource's put and get queues. SimPy scans a queue from its head when an event is created
    on it or one on the other side is processed: a Container goes on while events succeed, a Store
    and a Resource look at the head only (``_do_put``/``_do_get`` return values of SimPy 4); each
    subclass writes that scan out for its own rule."""

    def __init__(self, env: Environment):
        self.env = env
        self.put_queue: list[Event] = []
        self.get_queue: list[Event] = []
        self._on_put_done = self._trigger_get  # bound once (a callback of every put/get event)
        self._on_get_done = self._trigger_put
        self._ready = env._now_queue  # a succeeded event is processed after those already there

    def _new_put(self, ev: Event) -> Event:
        """Queue ``ev`` (created with ``[self._on_put_done]`` as its callbacks) and scan."""
        self.put_queue.append(ev)
        self._trigger_put(None)
        return ev

    def _new_get(self, ev: Event) -> Event:
        """Queue ``ev`` (created with ``[self._on_get_done]`` as its callbacks) and scan."""
        self.get_queue.append(ev)
        self._trigger_get(None)
        return ev

    def _trigger_put(self, _event: Event | None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _trigger_get(self, _event: Event | None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _Amount(Event):
    __slots__ = ("amount",)


class Container(_Queued):
    """SimPy's ``Container`` (integer amounts)."""

    def __init__(self, env: Environment, capacity: int, init: int = 0):
        super().__init__(env)
        self.capacity = capacity
        self.level = init

    def put(self, amount: int) -> Event:
        ev = _Amount(self.env, [self._on_put_done])
        ev.amount = amount
        self.put_queue.append(ev)
        self._trigger_put(None)
        return ev

    def get(self, amount: int) -> Event:
        ev = _Amount(self.env, [self._on_get_done])
        ev.amount = amount
        self.get_queue.append(ev)
        self._trigger_get(None)
        return ev

    def _trigger_put(self, _event: Event | None) -> None:
        q = self.put_queue
        while q and self.capacity - self.level >= q[0].amount:  # type: ignore[attr-defined]
            ev = q.pop(0)
            self.level += ev.amount  # type: ignore[attr-defined]
            ev.value = None
            self._ready.append(ev)

    def _trigger_get(self, _event: Event | None) -> None:
        q = self.get_queue
        while q and self.level >= q[0].amount:  # type: ignore[attr-defined]
            ev = q.pop(0)
            self.level -= ev.amount  # type: ignore[attr-defined]
            ev.value = None
            self._ready.append(ev)


class _Item(Event):
    __slots__ = ("item",)


class Store(_Queued):
    """SimPy's ``Store`` of unbounded capacity (FIFO)."""

    def __init__(self, env: Environment):
        super().__init__(env)
        self.items: list[Any] = []

    def put(self, item: Any) -> Event:
        ev = _Item(self.env, [self._on_put_done])
        ev.item = item
        self.put_queue.append(ev)
        self._trigger_put(None)
        return ev

    def get(self) -> Event:
        ev = Event(self.env, [self._on_get_done])
        self.get_queue.append(ev)
        self._trigger_get(None)
        return ev

    def _trigger_put(self, _event: Event | None) -> None:
        q = self.put_queue
        if q:
            ev = q.pop(0)
            self.items.append(ev.item)  # type: ignore[attr-defined]
            ev.value = None
            self._ready.append(ev)

    def _trigger_get(self, _event: Event | None) -> None:
        q = self.get_queue
        if q and self.items:
            ev = q.pop(0)
            ev.value = self.items.pop(0)
            self._ready.append(ev)


class _Request(Event):
    __slots__ = ("resource",)

    def __enter__(self) -> "_Request":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        res = self.resource
        if self.value is _PENDING:  # SimPy's Put.cancel
            res.put_queue.remove(self)
        if exc_type is not GeneratorExit:
            res.release(self)


class _Release(Event):
    __slots__ = ("request",)


class Resource(_Queued):
    """SimPy's ``Resource`` (first come, first served)."""

    def __init__(self, env: Environment, capacity: int = 1):
        super().__init__(env)
        self.capacity = capacity
        self.users: list[Event] = []

    @property
    def count(self) -> int:
        return len(self.users)

    @property
    def queue(self) -> list[Event]:
        return self.put_queue

    def request(self) -> _Request:
        ev = _Request(self.env, [self._on_put_done])
        ev.resource = self
        return self._new_put(ev)  # type: ignore[return-value]

    def release(self, request: Event) -> Event:
        ev = _Release(self.env, [self._on_get_done])
        ev.request = request
        return self._new_get(ev)

    def _trigger_put(self, _event: Event | None) -> None:
        q = self.put_queue
        if q and len(self.users) < self.capacity:
            ev = q.pop(0)
            self.users.append(ev)
            ev.value = None
            self._ready.append(ev)

    def _trigger_get(self, _event: Event | None) -> None:
        q = self.get_queue
        if q:
            ev = q.pop(0)
            try:
                self.users.remove(ev.request)  # type: ignore[attr-defined]
            except ValueError:
                pass
            ev.value = None
            self._ready.append(ev)


__all__ = ["Container", "Environment", "Event", "Resource", "Store"]
