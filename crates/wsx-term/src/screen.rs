//! The server-side screen: every output byte goes through a terminal
//! emulator (Alacritty's), so a viewer that attaches late, reloads, or fell
//! behind gets the screen as it is, with its scrollback, not a replay of
//! raw chunks. The escape codes that redraw it are rendered here from the
//! emulator's grid: cells, colours and attributes, line wraps, the cursor
//! and its pen, and the input modes a program set.

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::{Config, Term, TermMode};
use alacritty_terminal::vte::ansi::{Color, NamedColor, Processor};
use std::fmt::Write as _;

/// A terminal's state, fed the PTY's output.
pub struct Screen {
    term: Term<VoidListener>,
    parser: Processor,
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

/// A terminal size, as the emulator takes it.
struct Size {
    rows: usize,
    cols: usize,
}

impl Dimensions for Size {
    fn total_lines(&self) -> usize {
        self.rows
    }
    fn screen_lines(&self) -> usize {
        self.rows
    }
    fn columns(&self) -> usize {
        self.cols
    }
}

fn size(rows: u16, cols: u16) -> Size {
    Size {
        rows: usize::from(rows.max(1)),
        cols: usize::from(cols.max(2)),
    }
}

impl Screen {
    /// A blank screen of `rows` x `cols` keeping `scrollback` lines.
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Screen {
        let config = Config {
            scrolling_history: scrollback,
            ..Config::default()
        };
        Screen {
            term: Term::new(config, &size(rows, cols), VoidListener),
            parser: Processor::new(),
        }
    }

    /// Applies output bytes.
    pub fn process(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.term, bytes);
    }

    /// Applies what a synchronized update (DEC mode 2026) holds back: what
    /// is read from the screen must include every byte it was given.
    fn flush(&mut self) {
        if self.parser.sync_bytes_count() > 0 {
            self.parser.stop_sync(&mut self.term);
        }
    }

    /// Resizes (as the PTY was).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.flush();
        self.term.resize(size(rows, cols));
    }

    /// `(rows, cols)`.
    pub fn size(&self) -> (u16, u16) {
        let grid = self.term.grid();
        let clamp = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        (clamp(grid.screen_lines()), clamp(grid.columns()))
    }

    /// The visible text, row by row without trailing blanks (for tests and
    /// the API's `screen` text); a wrapped row runs on into the next.
    pub fn text(&mut self) -> String {
        self.flush();
        let grid = self.term.grid();
        let mut out = String::new();
        for line in 0..grid.screen_lines() {
            let row = &grid[Line(line as i32)];
            let cells = (0..grid.columns()).map(|c| &row[Column(c)]);
            let mut text = String::new();
            for cell in cells {
                if cell
                    .flags
                    .intersects(Flags::WIDE_CHAR_SPACER | Flags::LEADING_WIDE_CHAR_SPACER)
                {
                    continue;
                }
                text.push(cell.c);
                for &z in cell.zerowidth().unwrap_or_default() {
                    text.push(z);
                }
            }
            let wrapped = row[Column(grid.columns() - 1)]
                .flags
                .contains(Flags::WRAPLINE);
            if wrapped {
                out.push_str(&text);
            } else {
                out.push_str(text.trim_end_matches(' '));
                out.push('\n');
            }
        }
        let trimmed = out.trim_end_matches('\n').len();
        out.truncate(trimmed);
        out
    }

    /// Escape codes that redraw this screen on a terminal of the same size
    /// that has just been reset: the scrollback lines first (so they land
    /// in the terminal's own scrollback), then the visible screen, cursor,
    /// pen and input modes.
    pub fn snapshot(&mut self) -> Vec<u8> {
        self.flush();
        let mut out = String::with_capacity(64 << 10);
        // A full reset (RIS): the client's terminal starts blank.
        out.push_str("\x1bc");
        let alternate = self.term.mode().contains(TermMode::ALT_SCREEN);
        if alternate {
            // A full-screen program (an editor): its screen, no scrollback
            // (the emulator keeps the main screen out of reach meanwhile).
            out.push_str("\x1b[?1049h");
            self.draw_screen(&mut out);
        } else {
            self.draw_lines(&mut out);
        }
        self.draw_state(&mut out);
        out.into_bytes()
    }

    /// Escape codes that bring a terminal that fell behind (it showed an
    /// older state of this session) to this screen without a reset, so its
    /// own scrollback stays: its screen is scrolled into its scrollback,
    /// then the visible screen, cursor and modes are drawn. Only the
    /// visible rows are rendered: cheap enough to send often under a flood.
    pub fn resync(&mut self) -> Vec<u8> {
        self.flush();
        let (rows, _) = self.size();
        let mut out = String::with_capacity(8 << 10);
        // Main screen, soft reset (DECSTR; and its margins, origin mode and
        // insert mode spelt out for terminals without it), cursor to the
        // bottom row, then one line feed per row.
        let _ = write!(
            out,
            "\x1b[?1049l\x1b[!p\x1b[r\x1b[?6l\x1b[4l\x1b[m\x1b[{rows};1H"
        );
        for _ in 0..rows {
            out.push('\n');
        }
        if self.term.mode().contains(TermMode::ALT_SCREEN) {
            out.push_str("\x1b[?1049h");
        }
        self.draw_screen(&mut out);
        self.draw_state(&mut out);
        out.into_bytes()
    }

    /// The active grid's scrollback and visible rows, top to bottom, as
    /// lines written from the top-left of a blank screen.
    fn draw_lines(&self, out: &mut String) {
        let grid = self.term.grid();
        let history = grid.history_size() as i32;
        let rows = grid.screen_lines() as i32;
        let mut pen = Pen::default();
        for line in -history..rows {
            if line > -history {
                let prev = &grid[Line(line - 1)];
                // A wrapped row runs on: the terminal wraps it again.
                if !prev[Column(grid.columns() - 1)]
                    .flags
                    .contains(Flags::WRAPLINE)
                {
                    pen.reset(out);
                    out.push_str("\r\n");
                }
            }
            draw_row(
                out,
                &grid[Line(line)],
                grid.columns(),
                self.keep(line),
                &mut pen,
            );
        }
        pen.reset(out);
    }

    /// Blanks to keep at the start of row `line`: up to the cursor on its
    /// row (the space after a prompt is the prompt's, and where input goes).
    fn keep(&self, line: i32) -> usize {
        let cursor = &self.term.grid().cursor.point;
        if cursor.line.0 == line {
            cursor.column.0
        } else {
            0
        }
    }

    /// The active grid's visible rows, each from its first column.
    fn draw_screen(&self, out: &mut String) {
        let grid = self.term.grid();
        let mut pen = Pen::default();
        out.push_str("\x1b[m\x1b[H\x1b[2J");
        for line in 0..grid.screen_lines() {
            let _ = write!(out, "\x1b[{};1H", line + 1);
            let line = line as i32;
            draw_row(
                out,
                &grid[Line(line)],
                grid.columns(),
                self.keep(line),
                &mut pen,
            );
        }
        pen.reset(out);
    }

    /// The cursor (position, pen, visibility) and the input modes.
    fn draw_state(&self, out: &mut String) {
        let grid = self.term.grid();
        let cursor = &grid.cursor;
        let _ = write!(
            out,
            "\x1b[{};{}H",
            cursor.point.line.0 + 1,
            cursor.point.column.0 + 1
        );
        Pen::default().set(out, &cursor.template);
        let mode = *self.term.mode();
        let modes: [(TermMode, &str, &str); 12] = [
            (TermMode::SHOW_CURSOR, "", "\x1b[?25l"),
            (TermMode::LINE_WRAP, "", "\x1b[?7l"),
            (TermMode::APP_CURSOR, "\x1b[?1h", ""),
            (TermMode::APP_KEYPAD, "\x1b=", ""),
            (TermMode::INSERT, "\x1b[4h", ""),
            (TermMode::LINE_FEED_NEW_LINE, "\x1b[20h", ""),
            (TermMode::BRACKETED_PASTE, "\x1b[?2004h", ""),
            (TermMode::MOUSE_REPORT_CLICK, "\x1b[?1000h", ""),
            (TermMode::MOUSE_DRAG, "\x1b[?1002h", ""),
            (TermMode::MOUSE_MOTION, "\x1b[?1003h", ""),
            (TermMode::FOCUS_IN_OUT, "\x1b[?1004h", ""),
            (TermMode::SGR_MOUSE, "\x1b[?1006h", ""),
        ];
        for (flag, on, off) in modes {
            out.push_str(if mode.contains(flag) { on } else { off });
        }
        if mode.contains(TermMode::UTF8_MOUSE) {
            out.push_str("\x1b[?1005h");
        }
    }
}

/// One row's cells from where the cursor is, blanks at its end past `keep`
/// left out.
fn draw_row(
    out: &mut String,
    row: &alacritty_terminal::grid::Row<Cell>,
    cols: usize,
    keep: usize,
    pen: &mut Pen,
) {
    let blank = |c: &Cell| {
        c.c == ' '
            && c.bg == Color::Named(NamedColor::Background)
            && !c
                .flags
                .intersects(Flags::INVERSE | Flags::ALL_UNDERLINES | Flags::STRIKEOUT)
            && c.extra.is_none()
    };
    let wrapped = row[Column(cols - 1)].flags.contains(Flags::WRAPLINE);
    let end = if wrapped {
        cols
    } else {
        (0..cols)
            .rev()
            .find(|&c| !blank(&row[Column(c)]))
            .map_or(0, |c| c + 1)
            .max(keep.min(cols))
    };
    for c in 0..end {
        let cell = &row[Column(c)];
        if cell.flags.contains(Flags::WIDE_CHAR_SPACER) {
            continue;
        }
        pen.set(out, cell);
        if cell.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER) {
            out.push(' ');
            continue;
        }
        out.push(cell.c);
        for &z in cell.zerowidth().unwrap_or_default() {
            out.push(z);
        }
    }
}

/// The attributes last written (SGR), so a run of cells alike costs one.
#[derive(Default)]
struct Pen {
    current: Option<(Color, Color, Flags)>,
}

/// Attributes that SGR carries (the rest of a cell's flags are layout).
const STYLE: Flags = Flags::BOLD
    .union(Flags::DIM)
    .union(Flags::ITALIC)
    .union(Flags::ALL_UNDERLINES)
    .union(Flags::INVERSE)
    .union(Flags::HIDDEN)
    .union(Flags::STRIKEOUT);

impl Pen {
    fn reset(&mut self, out: &mut String) {
        if self.current.take().is_some() {
            out.push_str("\x1b[m");
        }
    }

    fn set(&mut self, out: &mut String, cell: &Cell) {
        let want = (cell.fg, cell.bg, cell.flags & STYLE);
        let default = (
            Color::Named(NamedColor::Foreground),
            Color::Named(NamedColor::Background),
            Flags::empty(),
        );
        let now = self.current.unwrap_or(default);
        if now == want {
            return;
        }
        self.current = (want != default).then_some(want);
        out.push_str("\x1b[0");
        let (fg, bg, flags) = want;
        for (flag, code) in [
            (Flags::BOLD, ";1"),
            (Flags::DIM, ";2"),
            (Flags::ITALIC, ";3"),
            (Flags::ALL_UNDERLINES, ";4"),
            (Flags::INVERSE, ";7"),
            (Flags::HIDDEN, ";8"),
            (Flags::STRIKEOUT, ";9"),
        ] {
            if flags.intersects(flag) {
                out.push_str(code);
            }
        }
        colour(out, fg, 30);
        colour(out, bg, 40);
        out.push('m');
    }
}

/// `;3N` / `;9N` / `;38;5;N` / `;38;2;R;G;B` (base 30), or the same for
/// the background (base 40); nothing for the default colour.
fn colour(out: &mut String, color: Color, base: u16) {
    let named = |n: u16, out: &mut String| {
        let _ = if n < 8 {
            write!(out, ";{}", base + n)
        } else {
            write!(out, ";{}", base + 60 + (n - 8))
        };
    };
    match color {
        Color::Spec(rgb) => {
            let _ = write!(out, ";{};2;{};{};{}", base + 8, rgb.r, rgb.g, rgb.b);
        }
        Color::Indexed(i) => {
            let _ = write!(out, ";{};5;{i}", base + 8);
        }
        Color::Named(n) => {
            let n = n as u16;
            if n < 16 {
                named(n, out);
            } else if (NamedColor::DimBlack as u16..=NamedColor::DimWhite as u16).contains(&n) {
                named(n - NamedColor::DimBlack as u16, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU16;

    fn nz(n: u16) -> NonZeroU16 {
        NonZeroU16::new(n).unwrap()
    }

    /// A screen and an independent emulator (vt100) fed the same bytes.
    struct Pair {
        screen: Screen,
        reference: vt100::Parser,
    }

    impl Pair {
        fn new(rows: u16, cols: u16, scrollback: usize) -> Pair {
            Pair {
                screen: Screen::new(rows, cols, scrollback),
                reference: vt100::Parser::new(nz(rows), nz(cols), scrollback),
            }
        }

        fn feed(&mut self, bytes: &[u8]) {
            self.screen.process(bytes);
            self.reference.process(bytes);
        }
    }

    /// What a fresh terminal shows after the snapshot of `s`.
    fn replay(s: &mut Screen, scrollback: usize) -> vt100::Parser {
        let (rows, cols) = s.size();
        let mut p = vt100::Parser::new(nz(rows), nz(cols), scrollback);
        p.process(&s.snapshot());
        p
    }

    /// Cell for cell: text (a blank is a blank, written or not), colours
    /// and attributes; then the cursor and its visibility.
    fn assert_same_screen(got: &vt100::Screen, want: &vt100::Screen) {
        assert_eq!(got.size(), want.size());
        let (rows, cols) = want.size();
        for r in 0..rows.get() {
            for c in 0..cols.get() {
                let (g, w) = (got.cell(r, c).unwrap(), want.cell(r, c).unwrap());
                let text = |x: &vt100::Cell| match x.contents() {
                    "" => " ".to_string(),
                    t => t.to_string(),
                };
                // A blank's foreground, boldness and slant are invisible.
                let style = |x: &vt100::Cell| {
                    let blank = text(x) == " ";
                    (
                        if blank {
                            vt100::Color::Default
                        } else {
                            x.fgcolor()
                        },
                        x.bgcolor(),
                        x.bold() && !blank,
                        x.italic() && !blank,
                        x.underline(),
                        x.inverse(),
                        x.is_wide(),
                    )
                };
                assert_eq!(
                    (text(g), style(g)),
                    (text(w), style(w)),
                    "cell {r},{c}:\n{}\n---\n{}",
                    got.contents(),
                    want.contents()
                );
            }
        }
        assert_eq!(got.cursor_position(), want.cursor_position());
        assert_eq!(got.hide_cursor(), want.hide_cursor());
    }

    #[test]
    fn a_snapshot_redraws_screen_cursor_colours_and_scrollback() {
        let mut p = Pair::new(5, 20, 100);
        for i in 0..12 {
            p.feed(format!("line {i}\r\n").as_bytes());
        }
        p.feed(
            "\x1b[31mred\x1b[0m \x1b[1;4;38;5;208mbold\x1b[0m \x1b[48;2;1;2;3mrgb\x1b[m 漢字é\r\n"
                .as_bytes(),
        );
        // A long line wraps; then a prompt with its own pen, cursor hidden.
        p.feed(b"0123456789abcdefghijKLMNO\r\n\x1b[7minv\x1b[m \x1b[32m$ \x1b[?25l");
        let mut r = replay(&mut p.screen, 100);
        assert_same_screen(r.screen(), p.reference.screen());
        // The pen the program left carries on: next output is green.
        r.process(b"x");
        p.feed(b"x");
        assert_same_screen(r.screen(), p.reference.screen());
        // The earlier lines are in the scrollback, in order.
        assert_eq!(
            r.screen().scrollback_len(),
            p.reference.screen().scrollback_len()
        );
        r.screen_mut().set_scrollback(usize::MAX);
        assert!(
            r.screen().contents().starts_with("line 0\nline 1"),
            "{}",
            r.screen().contents()
        );
        assert_eq!(
            p.screen.text(),
            "line 11\nred bold rgb 漢字é\n0123456789abcdefghijKLMNO\ninv $ x",
            "the visible text"
        );
    }

    #[test]
    fn a_snapshot_keeps_the_input_modes() {
        let mut p = Pair::new(4, 20, 10);
        p.feed(b"\x1b[?1h\x1b[?2004h\x1b[?1002h\x1b[?1006h$ ");
        let r = replay(&mut p.screen, 10);
        let (g, w) = (r.screen(), p.reference.screen());
        assert!(g.application_cursor() && g.bracketed_paste());
        assert_eq!(g.mouse_protocol_mode(), w.mouse_protocol_mode());
        assert_eq!(g.mouse_protocol_encoding(), w.mouse_protocol_encoding());
    }

    #[test]
    fn a_resync_draws_the_screen_over_an_older_one_and_keeps_its_scrollback() {
        for alternate in [false, true] {
            let mut p = Pair::new(5, 20, 100);
            let mut viewer = vt100::Parser::new(nz(5), nz(20), 100);
            for i in 0..8 {
                let line = format!("old {i}\r\n");
                p.feed(line.as_bytes());
                viewer.process(line.as_bytes());
            }
            // The viewer is left in a scroll region and colour; the
            // session moves on without it.
            viewer.process(b"\x1b[2;3r\x1b[32m");
            for i in 0..50 {
                p.feed(format!("new {i}\r\n").as_bytes());
            }
            if alternate {
                p.feed(b"\x1b[?1049h\x1b[Heditor");
            }
            p.feed(b"\x1b[1;33mnow$ ");
            let before = viewer.screen().scrollback_len();
            viewer.process(&p.screen.resync());
            assert_same_screen(viewer.screen(), p.reference.screen());
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
        let mut p = Pair::new(4, 10, 10);
        p.feed(b"shell$ \x1b[?1049h\x1b[H\x1b[2Jeditor\x1b[3;2H");
        let r = replay(&mut p.screen, 10);
        assert!(r.screen().alternate_screen());
        assert_same_screen(r.screen(), p.reference.screen());
        assert_eq!(p.screen.text(), "editor");
    }

    #[test]
    fn a_synchronized_update_in_progress_is_in_the_snapshot() {
        let mut p = Pair::new(4, 20, 10);
        // The program began an update (DEC 2026) and has not ended it yet:
        // the bytes are the session's all the same.
        p.screen.process(b"before\r\n\x1b[?2026hduring");
        p.reference.process(b"before\r\nduring");
        let r = replay(&mut p.screen, 10);
        assert_same_screen(r.screen(), p.reference.screen());
    }
}
