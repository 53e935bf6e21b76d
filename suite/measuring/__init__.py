"""Measuring: the clock's segments, FLOPs, the machine's peak, memory, host contention, the hardware and
software fingerprint, and the speed profile."""
