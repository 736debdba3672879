"""The text watermark on a streamed completion, event by event: each event goes out as the upstream sent it, bytes
and all, unless the watermark rewrote text inside it.

An event waits until the engine has released all the text it carries, which is at most one word later than it came
(the engine holds an unfinished word, the words of a possible site, or the whitespace after a sentence end: what
the whole-answer watermark would hold). If what was released for it is the text it carried, the event is forwarded
unchanged; only an event in which a site was rewritten has its text replaced and is serialised again (a few in a
hundred words). The text the client gets is the whole answer marked (``mark``), event boundaries aside.

Offsets: each choice's text is one string, the concatenation of its deltas. An event's *span* is the part of it
that event carries. The engine releases the text before a point (``done``) and holds the rest (``Engine.held``), so
what it released in one call covers the input between the old ``done`` and the new one. When no site was rewritten
in that call (the engine's ``changed`` count did not move) the release is that input as it came; otherwise the
whole release goes into the event in which that stretch of input starts, and the other events the stretch touches
give up their part of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillguard.watermark.text import Engine

# An event ready to go out: its bytes (None: serialise the chunk again), its parsed chunk (None: not a chunk), and
# for a chunk of the common shape going out as it came, the first choice's text (the event log's tap takes it from
# here instead of reading the chunk again; None: the tap reads the chunk).
Ready = tuple[bytes | None, dict[str, Any] | None, str | None]


class _Choice:
    """One choice's text: what was fed to its engine and what it released."""

    __slots__ = ("changed", "done", "engine", "fed", "rewritten")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fed = 0  # characters fed
        self.done = 0  # characters released (everything before this offset)
        self.changed = engine.changed  # the engine's rewrite count when last seen
        self.rewritten = 0  # spans of this choice whose text is being rebuilt, not yet out


class _Span:
    """An event waiting to go out, with the text one of its choices carries (input offsets ``start``..``end`` of
    that choice; ``parts``, once a rewrite touched it, the text it will carry instead). An event with text for
    several choices is one span per choice, the later ones ``joined`` to the first; an event without text is a span
    without a choice."""

    __slots__ = ("choice", "chunk", "end", "holder", "joined", "last", "parts", "sse", "start", "tap", "text")

    def __init__(
        self,
        sse: bytes | None,
        chunk: dict[str, Any] | None,
        choice: _Choice | None,
        holder: dict[str, Any] | None,
        text: str,
        last: bool,
        joined: bool,
    ) -> None:
        self.sse = sse
        self.chunk = chunk
        self.choice = choice
        self.holder = holder
        self.start = choice.fed if choice is not None else 0
        self.end = self.start + len(text)
        self.text = text
        self.last = last  # the choice's finish_reason chunk
        self.joined = joined
        self.parts: list[str] | None = None
        self.tap: str | None = None  # the text for the tap, if the event is of the common shape and choice 0

    def waiting(self) -> bool:
        return self.choice is not None and self.end > self.choice.done

    def overlaps(self, start: int, end: int) -> bool:
        return self.start < end and self.end > start

    def part(self, start: int, end: int) -> str:
        """The span's text within input offsets ``start``..``end``."""
        return self.text[max(start, self.start) - self.start : min(end, self.end) - self.start]


class StreamMarker:
    """Marks one streamed completion. ``event`` takes each event in order (its bytes, and its chunk if it is one;
    bytes None when an earlier stage changed the chunk) and appends to ``ready`` the events that can go out now,
    in order; ``finish`` releases everything at the end of the stream (``[DONE]``, or the upstream closing)."""

    def __init__(self, engines: dict[int, Engine], new_engine: Callable[[], Engine], chat: bool) -> None:
        self._engines = engines  # by choice index, shared with the ResponseWatermarker (its summary counts them)
        self._new_engine = new_engine
        self._chat = chat
        self._field = "content" if chat else "text"
        self._choices: dict[int, _Choice] = {}
        self._queue: list[_Span] = []  # held events, in order (rarely more than two)

    def event(self, sse: bytes | None, chunk: dict[str, Any] | None, ready: list[Ready]) -> None:
        # Nearly every chunk is one choice with a piece of text and no finish_reason: that takes the short way.
        choices = chunk.get("choices") if chunk is not None else None
        if isinstance(choices, list) and len(choices) == 1:
            choice = choices[0]
            if isinstance(choice, dict) and choice.get("finish_reason") is None:
                holder = choice.get("delta") if self._chat else choice
                if isinstance(holder, dict):
                    text = holder.get(self._field)
                    index = choice.get("index", 0)
                    if isinstance(text, str) and text and isinstance(index, int):
                        state = self._choices.get(index)
                        if state is None:
                            state = self._choice(index)
                        span = _Span(sse, chunk, state, holder, text, False, False)
                        if index == 0:
                            span.tap = text
                        self._queue.append(span)
                        state.fed = span.end
                        out = state.engine.feed(text)
                        if out or state.engine.changed != state.changed:
                            self._release(state, out, False)
                        self._drain(ready)
                        return
        spans = self._spans(sse, chunk, choices) if isinstance(choices, list) else []
        queue = self._queue
        if not spans:
            if queue:
                queue.append(_Span(sse, chunk, None, None, "", False, False))
            else:
                ready.append((sse, chunk, None))  # no text, nothing held: straight through (role, usage, errors)
            return
        queue.extend(spans)
        for span in spans:
            state = span.choice
            assert state is not None
            engine = state.engine
            state.fed = span.end
            out = engine.feed(span.text) if span.text else ""
            if span.last:
                out += engine.flush()
            self._release(state, out, span.last)
        self._drain(ready)

    def _spans(self, sse: bytes | None, chunk: dict[str, Any] | None, choices: list[Any]) -> list[_Span]:
        """The spans of one chunk: a choice with text, or with its ``finish_reason`` (its engine then releases
        everything, and this event carries what it held)."""
        spans: list[_Span] = []
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            found = choice.get("delta") if self._chat else choice
            holder: dict[str, Any] | None = found if isinstance(found, dict) else None
            text = holder.get(self._field) if holder is not None else None
            last = choice.get("finish_reason") is not None
            if not isinstance(text, str) or not text:
                if not last:
                    continue
                text = ""
            if holder is None:  # a finish_reason chunk without a delta: one to carry what the engine held
                holder = choice["delta"] = {}
            index = choice_index(choice, position)
            state = self._choices.get(index)
            if state is None:
                state = self._choice(index)
            spans.append(_Span(sse, chunk, state, holder, text, last, bool(spans)))
        return spans

    def _choice(self, index: int) -> _Choice:
        engine = self._engines.get(index)
        if engine is None:
            engine = self._engines[index] = self._new_engine()
        state = self._choices[index] = _Choice(engine)
        return state

    def _release(self, choice: _Choice, out: str, final: bool) -> None:
        """Account for what the engine released (``out``) after taking the input up to ``choice.fed`` (and, if
        ``final``, flushing). Unless it rewrote a site meanwhile (its ``changed`` count moved), what it released is
        the input after ``done`` as it came (tests/watermark/test_stream.py holds the engine to that)."""
        engine = choice.engine
        start = choice.done
        if engine.changed == choice.changed:
            choice.done = end = start + len(out)
            if choice.rewritten and out:
                self._as_it_came(choice, start, end)
            return
        choice.changed = engine.changed
        choice.done = choice.fed - len(engine.held())
        self._rewrite(choice, start, choice.done, out)

    def _as_it_came(self, choice: _Choice, start: int, end: int) -> None:
        """Input ``start``..``end`` released unchanged: spans being rebuilt take their part of it."""
        for span in self._queue:
            if span.choice is choice and span.parts is not None and span.overlaps(start, end):
                span.parts.append(span.part(start, end))

    def _rewrite(self, choice: _Choice, start: int, end: int, out: str) -> None:
        """Input ``start``..``end`` released as ``out`` (a site in it rewritten). What ``out`` shares with the input
        at either end is released as it came (those events can go out unchanged); the part between goes into the
        span where it starts, and the other spans it covers give their part of it up."""
        taken = "".join(
            span.part(start, end) for span in self._queue if span.choice is choice and span.overlaps(start, end)
        )
        if len(taken) != end - start:
            raise AssertionError("the released input is not held in the queue")
        same = min(len(taken), len(out))
        head = 0
        while head < same and taken[head] == out[head]:
            head += 1
        tail = 0
        while tail < same - head and taken[len(taken) - 1 - tail] == out[len(out) - 1 - tail]:
            tail += 1
        if choice.rewritten and head:
            self._as_it_came(choice, start, start + head)
        self._place(choice, start + head, end - tail, out[head : len(out) - tail])
        if choice.rewritten and tail:
            self._as_it_came(choice, end - tail, end)

    def _place(self, choice: _Choice, start: int, end: int, out: str) -> None:
        """Input ``start``..``end`` replaced by ``out``: it goes into the span where that input starts, the other
        spans it covers give their part up."""
        if start == end and not out:
            return
        owner: _Span | None = None
        last: _Span | None = None
        for span in self._queue:
            if span.choice is not choice:
                continue
            last = span
            if start < end:
                if not span.overlaps(start, end):
                    continue
            elif not span.start <= start < span.end:
                continue  # nothing taken in: only the span the point falls in
            if span.parts is None:
                span.parts = [span.text[: max(start - span.start, 0)]]
                choice.rewritten += 1
            if owner is None:
                owner = span
                span.parts.append(out)
        if owner is not None or not out:
            return
        # Text released without input of its own at the end of what was fed: it follows the choice's last span (the
        # one just fed, when there is one).
        holder = last
        if holder is None:
            raise AssertionError("released text with no event left to carry it")
        if holder.parts is None:
            holder.parts = [holder.text]
            choice.rewritten += 1
        holder.parts.append(out)

    def _drain(self, ready: list[Ready]) -> None:
        """Send the held events whose text is all released, in order; stop at the first still waiting."""
        queue = self._queue
        size = len(queue)
        sent = 0
        while sent < size:
            first = queue[sent]
            end = sent + 1
            while end < size and queue[end].joined:
                end += 1
            if end == sent + 1:
                if first.waiting():
                    break
                if first.parts is None:
                    ready.append((first.sse, first.chunk, first.tap))
                else:
                    self._rebuild(first)
                    ready.append((None, first.chunk, None))
            else:
                event = queue[sent:end]
                if any(span.waiting() for span in event):
                    break
                rebuilt = False
                for span in event:
                    if span.parts is not None:
                        self._rebuild(span)
                        rebuilt = True
                ready.append((None if rebuilt else first.sse, first.chunk, None))
            sent = end
        if sent:
            del queue[:sent]

    def _rebuild(self, span: _Span) -> None:
        """The span's text replaced by what the watermark wrote for it."""
        assert span.parts is not None and span.choice is not None and span.holder is not None
        span.choice.rewritten -= 1
        text = "".join(span.parts)
        if text or isinstance(span.holder.get(self._field), str):
            span.holder[self._field] = text

    def finish(self, ready: list[Ready], template: dict[str, Any] | None) -> None:
        """The stream ends (``[DONE]``, or the upstream closed it) without a ``finish_reason`` for some choice: its
        engine releases what it holds, every held event goes out, and text with no event left to carry it goes in
        a chunk of its own, built on ``template`` (the last chunk)."""
        tails: list[dict[str, Any]] = []
        for index, choice in self._choices.items():
            out = choice.engine.flush()
            if not out and choice.done == choice.fed and choice.engine.changed == choice.changed:
                continue
            if any(span.choice is choice for span in self._queue):
                self._release(choice, out, True)
            else:
                tails.append(_tail(index, out, self._chat, template))
                choice.done = choice.fed
        self._drain(ready)
        ready.extend((None, chunk, None) for chunk in tails)


def choice_index(choice: dict[str, Any], position: int) -> int:
    """A choice's index, or its position in the list when it has none (or not a number)."""
    index = choice.get("index")
    return index if isinstance(index, int) else position


def _tail(index: int, text: str, chat: bool, template: dict[str, Any] | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "finish_reason": None}
    if chat:
        choice["delta"] = {"content": text}
    else:
        choice["text"] = text
    chunk = {k: v for k, v in (template or {}).items() if k in ("id", "object", "created", "model")}
    chunk["choices"] = [choice]
    return chunk
