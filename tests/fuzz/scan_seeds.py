#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz_segment_scan into corpus/fuzz_segment_scan/.

Each seed is a list of patches over the segment scan_segment.cc builds (see
fuzz_segment_scan.cc for the format): the states a crashed or hostile client
leaves, named after what they do. Word offsets follow shm-layout/segment_layout.h;
registration 0 is the client that stays attached (this process), 1 the one
that detached. Run from anywhere: python3 tests/fuzz/scan_seeds.py
"""
import os
import struct

HEADER, POLICY0, POLICY1, KEYS, RESERVATIONS, CLIENTS, CONTROL, RING = range(8)
CLIENT_WORDS, RESERVATION_WORDS, KEY_WORDS = 240, 32, 16
LIMITS_AT, LIMIT_WORDS = 8 + 64 * 10, 67  # CompiledPolicy: 8 words, 64 models of 10 words
DEAD_PID = 0x7FFFFFF0  # above pid_max: never a live process
M64 = (1 << 64) - 1


def patch(region, offset, *words):
    return struct.pack("<BHB", region, offset, len(words)) + b"".join(
        struct.pack("<Q", w & M64) for w in words)


def header(length, kind=2):  # make_record_header
    return kind << 32 | (length & 0xFFFFFFFF)


def claim(start, length):  # make_audit_claim
    return 1 << 63 | ((start >> 3) & ((1 << 35) - 1)) << 28 | ((length >> 3) & 0xFFFFFFF)


def state(seq, owner, actor, status):  # make_state
    return seq << 32 | (owner & 0xFFF) << 20 | (actor & 0xFFF) << 8 | status


def cell(index, kind, measure):  # make_cell_key
    return index | kind << 32 | measure << 40


def client(i, word):
    return i * CLIENT_WORDS + word


def reservation(i, word):
    return i * RESERVATION_WORDS + word


SEEDS = {
    "base-as-the-clients-left-it": b"",
    "live-client-dies": patch(CLIENTS, client(0, 0), DEAD_PID),
    "departed-client-comes-back": patch(CLIENTS, client(1, 3), 0),
    "record-torn-by-a-dead-producer": patch(RING, 0, header(-168))
    + patch(CLIENTS, client(1, 18), claim(0, 168)),
    "record-torn-by-a-live-producer": patch(RING, 0, header(-168))
    + patch(CLIENTS, client(0, 18), claim(0, 168)),
    "record-length-not-a-word-multiple": patch(RING, 0, header(13)),
    "record-longer-than-the-ring": patch(RING, 0, header(1 << 20)),
    "padding-to-the-end-of-the-ring": patch(RING, 0, header(4096, 1)) + patch(CONTROL, 0, 4096),
    "zeroed-records-no-claim": patch(RING, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    # fuzz_segment_scan resumes the drain where the audit files end: control word 17.
    "restart-resumes-after-the-first-record": patch(CONTROL, 17, 168),
    "restart-resumes-past-the-tail": patch(CONTROL, 17, 1 << 40),
    "tail-behind-head": patch(CONTROL, 0, 16) + patch(CONTROL, 16, 3 * 4096),
    "tail-a-ring-ahead": patch(CONTROL, 0, 5 * 4096 + 8),
    "claims-far-ahead-from-every-registration": b"".join(
        patch(CLIENTS, client(i, 0), DEAD_PID) + patch(CLIENTS, client(i, 18), claim(1 << 33, 1 << 27))
        for i in range(2, 40)),
    "reservations-in-every-state-of-a-dead-owner": b"".join(
        patch(RESERVATIONS, reservation(i, 0), state(7, 2, 2, status), 0, 0, 9, M64, 0, M64, 1 << 40,
              1 << 33, 1 << 33, 1 << 31, 1 << 31, 5, 5, 0, 1 if status == 3 else 0,
              cell(1000, 1, 1), 1 << 40, cell(3, 2, 5), 0, cell(M64, 1, 2), M64)
        for i, status in enumerate([1, 2, 3, 4, 5, 255])),
    "held-reservation-past-its-deadline": patch(RESERVATIONS, reservation(3, 0), state(9, 0, 0, 2), 1),
    "settling-by-the-sidecar-actor": patch(RESERVATIONS, reservation(2, 0), state(3, 1, 0xFFF, 3)),
    "policy-with-too-many-limits": patch(POLICY0, 1, 65, 65),
    "policy-slot-being-written": patch(POLICY0, 5, 1) + patch(POLICY1, 5, 3),
    "policy-generation-ahead-of-its-slot": patch(HEADER, 48, 7),
    "budget-with-a-long-backward-window-table": patch(
        POLICY0, LIMITS_AT + 2 * LIMIT_WORDS + 27, 1000, *[1 << 40 - i for i in range(16)]),
    "rate-with-no-emission-interval": patch(POLICY0, LIMITS_AT + 22, 0, 0, M64),
    "counts-being-folded-forever": patch(HEADER, 69, 1) + patch(HEADER, 64, M64, M64, M64, M64),
    "store-words-overflowing": patch(HEADER, 36, M64, 0xFFFFFFFF, M64) + patch(HEADER, 304, 9, 9, M64),
    "region-table-rewritten": patch(HEADER, 8, 0, 0, 0, 1 << 40, 1 << 40, 1 << 40)
    + patch(HEADER, 14, 0, 0, 1 << 40),
    "keys-all-taken": b"".join(patch(KEYS, i * KEY_WORDS, i + 1, M64, M64, 1, M64) for i in range(64)),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_segment_scan")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
