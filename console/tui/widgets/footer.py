"""The footer of every screen: Textual's, except that one whose keys do not
fit its width keeps the most important and says so on `?`:
``? Help (3 more)`` (`?` lists every key); never a key cut in half.  The
most important: `?`, then the screen's ``FOOTER_KEEP`` actions, then the
others in the order the screen declares them; those kept are shown in
the declared order."""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_EXTRA = 2  # the palette key's left border and right padding


def is_help(binding) -> bool:
    return "question_mark" in binding.key.split(",") or binding.action.endswith("help")


class ConsoleFooter(Footer):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.hidden_keys: list[str] = []  # descriptions of the keys that did not fit
        self._laid_out_for = 0

    def _key_width(self, binding, description: str) -> int:
        # FooterKey: " KEY " then "DESCRIPTION " (not compact)
        return cell_len(self.app.get_key_display(binding)) + 2 + cell_len(description) + 1

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        self._laid_out_for = width
        active = self.screen.active_bindings
        items: dict[str, tuple] = {}  # action -> (binding, enabled, tooltip): its first key
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in items:
                items[binding.action] = (binding, enabled, tooltip)
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        room = width - ((self._key_width(palette[1], palette[1].description) + PALETTE_EXTRA)
                        if palette else 0)
        shown = list(items.values())
        labels = {b.action: b.description for b, _, _ in shown}
        self.hidden_keys = []
        if sum(self._key_width(b, b.description) for b, _, _ in shown) > room:
            help_item = next((i for i in shown if is_help(i[0])), None)
            first = getattr(self.screen, "FOOTER_KEEP", ())
            rest = sorted((i for i in shown if i is not help_item),
                          key=lambda i: 0 if i[0].action in first else 1)  # stable: declared order
            for n in range(len(rest), -1, -1):
                hidden = len(rest) - n
                keep = ([help_item] if help_item else []) + rest[:n]
                if help_item:
                    labels[help_item[0].action] = f"{help_item[0].description} ({hidden} more)"
                used = sum(self._key_width(b, labels[b.action]) for b, _, _ in keep)
                if used <= room or n == 0:
                    shown = [i for i in shown if i in keep]  # in the declared order
                    self.hidden_keys = [b.description for b, _, _ in rest[n:]]
                    break
        for binding, enabled, tooltip in shown:
            yield FooterKey(binding.key, self.app.get_key_display(binding), labels[binding.action],
                            binding.action, disabled=not enabled,
                            tooltip=tooltip).data_bind(compact=Footer.compact)
        if palette is not None:
            _node, binding, enabled, tooltip = palette
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                            binding.action, classes="-command-palette", disabled=not enabled,
                            tooltip=binding.tooltip or binding.description)

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._laid_out_for:
            self.call_after_refresh(self.recompose)
