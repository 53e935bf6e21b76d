"""Shared speech code for the speech tasks: audio features and CTC text (`audio`), eSpeak NG
synthesis (`synth`), the synthesised corpora (`corpus`) and the real datasets' readers (`real`)."""

# Constants every speech module shares, defined once here (this package imports nothing heavy, so the
# synthesis worker processes can read them without loading torch).
SAMPLE_RATE = 16_000  # Hz: every clip, synthesised or real, is 16 kHz mono int16
MANIFEST = "manifest.json"  # the file that describes a built corpus or cache folder
