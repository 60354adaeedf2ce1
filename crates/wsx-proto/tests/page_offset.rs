//! A large frame's receive buffer puts its data half a page past the page
//! boundary, so that copies between it and page-aligned buffers (TLS
//! records, the kernel's socket pages) do not 4K-alias. Checked under an
//! allocator that page-aligns large blocks, as mimalloc's do.

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::time::Instant;
use wsx_proto::{Config, Connection, Event, Role};

const PAGE: usize = 4096;
/// Blocks this large come page-aligned, as mimalloc's often are (its size
/// classes from 16 KiB up are mostly whole pages).
const LARGE: usize = 16 << 10;

struct PageAligned;

fn adjust(layout: Layout) -> Layout {
    if layout.size() >= LARGE && layout.align() < PAGE {
        Layout::from_size_align(layout.size(), PAGE).expect("valid layout")
    } else {
        layout
    }
}

// SAFETY: every call goes to the system allocator with the caller's layout,
// its alignment raised to a page for large blocks; `adjust` is a pure
// function of the layout, so `dealloc` and `realloc` hand `System` the same
// layout the block was allocated with. A stricter alignment satisfies the
// caller's.
unsafe impl GlobalAlloc for PageAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: `adjust` keeps the size (non-zero per the caller's contract).
        unsafe { System.alloc(adjust(layout)) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with `adjust(layout)`.
        unsafe { System.dealloc(ptr, adjust(layout)) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = adjust(Layout::from_size_align(new_size, layout.align()).expect("valid layout"));
        if new.align() == adjust(layout).align() {
            // SAFETY: `ptr` came from `alloc` with `adjust(layout)`, and the
            // new block needs the same alignment.
            return unsafe { System.realloc(ptr, adjust(layout), new_size) };
        }
        // Crossing the large threshold changes the alignment: move by hand.
        // SAFETY: `new` has a non-zero size; the copy stays within both
        // blocks (the smaller of the two sizes); `ptr` is freed with the
        // layout it was allocated with.
        unsafe {
            let to = System.alloc(new);
            if !to.is_null() {
                std::ptr::copy_nonoverlapping(ptr, to, layout.size().min(new_size));
                System.dealloc(ptr, adjust(layout));
            }
            to
        }
    }
}

#[global_allocator]
static ALLOC: PageAligned = PageAligned;

/// Page offset of the payload of the frame about to be read into `c`
/// (what part of it is already buffered sits at the buffer's start).
fn payload_offset(c: &mut Connection, header_len: usize) -> usize {
    (c.recv_buffer().as_ptr() as usize + header_len) % PAGE
}

fn binary(data: &[u8]) -> Event {
    Event::Binary(data.to_vec().into())
}

fn assert_off_boundary(at: usize, what: &str) {
    assert!(
        (1024..=3072).contains(&at),
        "{what}: payload at page offset {at}, near a page boundary"
    );
}

#[test]
fn the_allocator_under_test_page_aligns_large_blocks() {
    // The test below means something only if large blocks are page-aligned.
    for _ in 0..8 {
        let v: Vec<u8> = Vec::with_capacity(65_536 + 14);
        assert_eq!(v.as_ptr() as usize % PAGE, 0);
    }
}

#[test]
fn large_frames_land_half_a_page_off_the_boundary() {
    for payload in [16 << 10, 65_536, 100_000, 200_000] {
        for cut in [1, 2, 14, 4096, 65_000] {
            let t0 = Instant::now();
            let mut c = Connection::server(Config::default(), t0);
            let data: Vec<u8> = (0..payload).map(|i| (i % 251) as u8).collect();
            let frame = to(Role::Server, FIN | BINARY, &data);
            let header_len = frame.len() - payload;
            let cut = cut.min(frame.len() - 1);
            for i in 0..4 {
                // From the second frame on, the buffer is made for a whole
                // frame like the last before its first byte is read.
                if i > 0 {
                    let at = payload_offset(&mut c, header_len);
                    assert_off_boundary(at, &format!("frame {i} of {payload} bytes, cut at {cut}"));
                }
                c.recv_buffer().extend_from_slice(&frame[..cut]);
                c.handle_received(t0);
                assert!(poll_all(&mut c).is_empty());
                c.recv_buffer().extend_from_slice(&frame[cut..]);
                c.handle_received(t0);
                let got = poll_all(&mut c);
                assert_eq!(got.len(), 1, "frame {i} of {payload} bytes, cut at {cut}");
                assert!(
                    got[0] == binary(&data),
                    "frame {i} of {payload} bytes, cut at {cut}: payload changed"
                );
            }
        }
    }
}

/// The next frame's first header bytes arrive with the end of the one
/// before: the new buffer takes them along, and the payload still lands
/// off the boundary, intact.
#[test]
fn a_header_begun_in_the_previous_read_moves_with_its_frame() {
    for held in 1..=13 {
        let t0 = Instant::now();
        let mut c = Connection::server(Config::default(), t0);
        let data: Vec<u8> = (0..65_536).map(|i| (i % 253) as u8).collect();
        let frame = to(Role::Server, FIN | BINARY, &data);
        let header_len = frame.len() - data.len();
        let read = |c: &mut Connection, bytes: &[u8]| {
            c.recv_buffer().extend_from_slice(bytes);
            c.handle_received(t0);
            poll_all(c)
        };
        // A whole frame (frames like it get a whole-frame buffer from now
        // on) and the next one's first bytes, in one read.
        let got = read(&mut c, &[&frame[..], &frame[..held]].concat());
        assert!(got.len() == 1 && got[0] == binary(&data));
        for i in 0..3 {
            let at = payload_offset(&mut c, header_len);
            assert_off_boundary(at, &format!("{held} header bytes held, frame {i}"));
            let got = read(&mut c, &[&frame[held..], &frame[..held]].concat());
            assert!(
                got.len() == 1 && got[0] == binary(&data),
                "{held} header bytes held, frame {i}: payload changed"
            );
        }
    }
}
