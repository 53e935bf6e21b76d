"""Shared speech code for the speech tasks: audio features and CTC text (`audio`), eSpeak NG
synthesis (`synth`), the synthesised corpora (`corpus`) and the real datasets' readers (`real`)."""
