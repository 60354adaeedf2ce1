//! The server-side screen: every output byte goes through a terminal
//! emulator (vt100), so a viewer that attaches late, reloads, or fell
//! behind gets the screen as it is, with its scrollback, not a replay of
//! raw chunks.

use std::fmt::Write as _;
use std::num::NonZeroU16;

/// A terminal's state, fed the PTY's output.
pub struct Screen {
    parser: vt100::Parser,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (rows, cols) = self.size();
        f.debug_struct("Screen")
            .field("rows", &rows)
            .field("cols", &cols)
            .finish()
    }
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl Screen {
    /// A blank screen of `rows` x `cols` keeping `scrollback` lines.
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Screen {
        Screen {
            parser: vt100::Parser::new(nz(rows), nz(cols), scrollback),
        }
    }

    /// Applies output bytes.
    pub fn process(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    /// Resizes (as the PTY was).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.parser.set_size(nz(rows), nz(cols));
    }

    /// `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        let (r, c) = self.parser.screen().size();
        (r.get(), c.get())
    }

    /// The visible text, row by row (for tests and the API's `screen` text).
    pub fn text(&self) -> String {
        self.parser.screen().contents()
    }

    /// Escape codes that redraw this screen on a terminal of the same size
    /// that has just been reset: the scrollback lines first (so they land
    /// in the terminal's own scrollback), then the visible screen, cursor
    /// and input modes.
    pub fn snapshot(&self) -> Vec<u8> {
        let screen = self.parser.screen();
        let mut out = String::with_capacity(4096);
        // A full reset (RIS): the client's terminal starts blank.
        out.push_str("\x1bc");
        if screen.alternate_screen() {
            // A full-screen program (an editor): its screen, no scrollback.
            out.push_str("\x1b[?1049h");
        } else if screen.scrollback_len() > 0 {
            // Scrollback and visible rows as lines; the visible ones are
            // then drawn again, exactly, by state_formatted (which clears
            // the screen without pushing it to the scrollback).
            let mut lines = String::new();
            let mut state = vt100::capture::BasicFormattedCaptureState::default();
            let _ = screen.write_contents_formatted_basic(
                &mut lines,
                vt100::capture::BasicFormattedCaptureRange::Full(&mut state),
            );
            for (i, line) in lines.split('\n').enumerate() {
                if i > 0 {
                    out.push_str("\r\n");
                }
                out.push_str(line);
            }
            out.push_str("\x1b[m");
        }
        let _ = write!(out, "{}", screen.state_formatted());
        out.into_bytes()
    }

    /// Escape codes that bring a terminal that fell behind (it showed an
    /// older state of this session) to this screen without a reset, so its
    /// own scrollback stays: its screen is scrolled into its scrollback,
    /// then the visible screen, cursor and modes are drawn. Only the
    /// visible rows are rendered: cheap enough to send often under a flood.
    pub fn resync(&self) -> Vec<u8> {
        let screen = self.parser.screen();
        let (rows, _) = self.size();
        let mut out = String::with_capacity(4096);
        // Main screen, soft reset (DECSTR; and its margins and origin mode
        // spelt out for terminals without it), cursor to the bottom row,
        // then one line feed per row.
        let _ = write!(out, "\x1b[?1049l\x1b[!p\x1b[r\x1b[?6l\x1b[m\x1b[{rows};1H");
        for _ in 0..rows {
            out.push('\n');
        }
        if screen.alternate_screen() {
            out.push_str("\x1b[?1049h");
        }
        let _ = write!(out, "{}", screen.state_formatted());
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a fresh terminal shows after the snapshot of `s`.
    fn replay(s: &Screen, scrollback: usize) -> vt100::Parser {
        let (rows, cols) = s.size();
        let mut p = vt100::Parser::new(nz(rows), nz(cols), scrollback);
        p.process(&s.snapshot());
        p
    }

    #[test]
    fn a_snapshot_redraws_screen_cursor_colours_and_scrollback() {
        let mut s = Screen::new(5, 20, 100);
        for i in 0..12 {
            s.process(format!("line {i}\r\n").as_bytes());
        }
        s.process(b"\x1b[31mred\x1b[0m and $ \x1b[?25l");
        let p = replay(&s, 100);
        assert_eq!(p.screen().contents(), s.text());
        assert_eq!(
            p.screen().cursor_position(),
            s.parser.screen().cursor_position()
        );
        assert_eq!(
            p.screen().contents_formatted(),
            s.parser.screen().contents_formatted()
        );
        assert!(p.screen().hide_cursor());
        // The earlier lines are in the scrollback, in order.
        let mut p = p;
        p.screen_mut().set_scrollback(usize::MAX);
        assert!(
            p.screen().contents().starts_with("line 0\nline 1"),
            "{}",
            p.screen().contents()
        );
        assert_eq!(
            p.screen().scrollback_len(),
            s.parser.screen().scrollback_len()
        );
    }

    #[test]
    fn a_resync_draws_the_screen_over_an_older_one_and_keeps_its_scrollback() {
        for alternate in [false, true] {
            let mut s = Screen::new(5, 20, 100);
            let mut viewer = vt100::Parser::new(nz(5), nz(20), 100);
            for i in 0..8 {
                let line = format!("old {i}\r\n");
                s.process(line.as_bytes());
                viewer.process(line.as_bytes());
            }
            // The viewer is left in a scroll region and colour; the
            // session moves on without it.
            viewer.process(b"\x1b[2;3r\x1b[32m");
            for i in 0..50 {
                s.process(format!("new {i}\r\n").as_bytes());
            }
            if alternate {
                s.process(b"\x1b[?1049h\x1b[Heditor");
            }
            s.process(b"\x1b[1;33mnow$ ");
            let before = viewer.screen().scrollback_len();
            viewer.process(&s.resync());
            assert_eq!(
                viewer.screen().contents(),
                s.text(),
                "alternate {alternate}"
            );
            assert_eq!(
                viewer.screen().contents_formatted(),
                s.parser.screen().contents_formatted()
            );
            assert_eq!(
                viewer.screen().cursor_position(),
                s.parser.screen().cursor_position()
            );
            assert_eq!(viewer.screen().alternate_screen(), alternate);
            if !alternate {
                // What it had seen is still in its scrollback.
                assert!(viewer.screen().scrollback_len() >= before + 4);
                viewer.screen_mut().set_scrollback(usize::MAX);
                assert!(viewer.screen().contents().starts_with("old 0\nold 1"));
            }
        }
    }

    #[test]
    fn a_full_screen_program_is_redrawn_on_the_alternate_screen() {
        let mut s = Screen::new(4, 10, 10);
        s.process(b"shell$ \x1b[?1049h\x1b[H\x1b[2Jeditor");
        let p = replay(&s, 10);
        assert!(p.screen().alternate_screen());
        assert_eq!(p.screen().contents(), "editor");
    }
}
