# Limner for GIMP 3: Filters > Limner > Studio Server….
# Copyright (C) 2026 the Limner authors. GPL-3.0-or-later.
"""The studio server setting: a studio's shared backend (wss://, the user's token, the
certificate fingerprint to pin) or the local one. It is the owner-only file the Krita
plug-in and `limner studio use` write too (limner.discovery), never GIMP's own settings,
which keep a procedure's last values in clear."""

from gi.repository import GimpUi, Gtk
from gimpio import connect


def use(url, token, fingerprint):
    """Set the studio server (an empty `url`: the local backend), then connect once to
    say whether it answers; returns what to tell the user. ValueError for a bad setting
    (not wss://, no token)."""
    from limner import discovery

    current = discovery.studio_setting()
    if url and not token and current and current["url"] == url:
        token = current["token"]           # a new pin for the same server and user
    discovery.set_studio_setting(url, token, fingerprint)
    where = f"the studio server at {url}" if url else "the local backend"
    if not url:
        return f"Limner now uses {where}."
    try:
        with connect() as client:
            return f"Limner now uses {where} ({client.server})."
    except Exception as exc:  # noqa: BLE001 - said to the user: the setting stays
        return f"Limner now uses {where}, but it did not answer: " \
               f"{getattr(exc, 'message', exc)}"


class StudioDialog:
    """Server, token (hidden; kept when left empty) and fingerprint, with Use studio
    server, Use local backend and Close; what happened in a line below."""

    def __init__(self):
        from limner import discovery

        current = discovery.studio_setting()
        self.dialog = GimpUi.Dialog(title="Limner: studio server", role="limner-studio")
        self.dialog.add_button("_Close", Gtk.ResponseType.CLOSE)
        grid = Gtk.Grid(row_spacing=6, column_spacing=6)
        self.url = Gtk.Entry(text=current["url"] if current else "",
                             placeholder_text="wss://studio-gpu:7421", hexpand=True)
        self.token = Gtk.Entry(visibility=False, placeholder_text="kept as it is"
                               if current else "your token")
        self.fingerprint = Gtk.Entry(text=current["fingerprint"] if current else "",
                                     placeholder_text="SHA-256, as the server prints it")
        for row, (label, entry) in enumerate((("Server", self.url), ("Token", self.token),
                                              ("Fingerprint", self.fingerprint))):
            grid.attach(Gtk.Label(label=label, xalign=0), 0, row, 1, 1)
            grid.attach(entry, 1, row, 1, 1)
        self.status = Gtk.Label(label="Now: " + (f"the studio server at {current['url']}"
                                                 if current else "the local backend"),
                                wrap=True, xalign=0)
        buttons = Gtk.Box(spacing=6)
        for label, handler in (("Use studio server", self._studio),
                               ("Use local backend", self._local)):
            button = Gtk.Button.new_with_label(label)
            button.connect("clicked", handler)
            buttons.pack_start(button, False, False, 0)
        area = self.dialog.get_content_area()
        area.set_spacing(6)
        for widget in (Gtk.Label(label="Send jobs to your studio's shared backend instead "
                                       "of one on this computer.", wrap=True, xalign=0),
                       grid, buttons, self.status):
            area.pack_start(widget, False, False, 0)
        self.dialog.set_default_size(560, 220)
        self.dialog.show_all()

    def run(self):
        self.dialog.run()
        self.dialog.destroy()

    def _studio(self, _button):
        try:
            said = use(self.url.get_text().strip(), self.token.get_text().strip(),
                       self.fingerprint.get_text().strip())
        except (ValueError, OSError) as exc:
            said = str(exc)
        self.token.set_text("")
        self.status.set_text(said)

    def _local(self, _button):
        self.status.set_text(use("", "", ""))
