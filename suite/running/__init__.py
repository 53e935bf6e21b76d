"""Running: plan runs from flags, run each one start to record (here, on Ray or under torchrun), survive
interrupts, and hand each trainer its context."""
