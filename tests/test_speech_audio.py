"""The shared audio pipeline: error rates, CTC decoding, text normalisation, bad clips."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.speech.audio import (MIN_SAMPLES, LogMel, decode, encode, error_rates, greedy_ctc,
                          normalize_text, pad_clips, transcript_source)


EDGE_CASES = {
    "empty reference": (["", "a b"], ["x", "a b"]),
    "every reference empty": ([""], ["x y"]),
    "empty hypothesis": (["the cat"], [""]),
    "leading, trailing and repeated spaces": (["  the  cat sat "], ["the cat   sat"]),
    "case": (["The Cat"], ["the CAT"]),
    "tabs and newlines": (["a\tb\nc"], ["a b c"]),
    "apostrophes": (["don't stop"], ["dont stop"]),
    "one character": (["a"], ["b"]),
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_wer_and_cer_equal_jiwers_with_the_normalisation_the_task_documents(name):
    """Against jiwer itself, normalising as the task docstring says: lower case, whitespace runs one space."""
    import jiwer

    refs, hyps = EDGE_CASES[name]
    words = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemoveWhiteSpace(replace_by_space=True),
                           jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    chars = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemoveWhiteSpace(replace_by_space=True),
                           jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfChars()])
    expected = {"wer": jiwer.wer(refs, hyps, reference_transform=words, hypothesis_transform=words),
                "cer": jiwer.cer(refs, hyps, reference_transform=chars, hypothesis_transform=chars)}
    assert error_rates(refs, hyps) == pytest.approx(expected)


def test_spaces_and_case_are_no_errors_and_an_empty_corpus_scores_zero():
    assert error_rates(["  The  cat "], ["the cat"]) == {"wer": 0.0, "cer": 0.0}
    assert error_rates(["the cat"], ["the  cat"]) == {"wer": 0.0, "cer": 0.0}  # a doubled space is no error
    assert error_rates([], []) == {"wer": 0.0, "cer": 0.0}
    assert error_rates(["", ""], ["a", "b c"]) == {"wer": 3.0, "cer": 4.0}  # no reference words: insertions


def test_wer_and_cer_are_corpus_level():
    refs = ["the cat sat", "hello world"]
    hyps = ["the cat sit on", "hello"]
    rates = error_rates(refs, hyps)
    # words: sat->sit, +on (2 edits) and -world (1 edit) over 3 + 2 reference words
    assert rates["wer"] == pytest.approx(3 / 5)
    # chars: a->i, +" on" (4 edits) and -" world" (6 edits) over 11 + 11 reference characters
    assert rates["cer"] == pytest.approx(10 / 22)
    assert error_rates(["a b"], ["a b"]) == {"wer": 0.0, "cer": 0.0}


def test_greedy_ctc_collapses_repeats_then_drops_blanks():
    best = torch.tensor([[0, 1, 1, 0, 1, 2, 2, 0, 0, 3]])
    log_probs = torch.nn.functional.one_hot(best, 5).float().log()
    assert greedy_ctc(log_probs, torch.tensor([10])) == [[1, 1, 2, 3]]
    # frames past an utterance's length are ignored
    assert greedy_ctc(log_probs, torch.tensor([4])) == [[1]]


def test_text_normalisation_counts_what_it_drops():
    assert normalize_text("Hello,  WORLD!") == ("hello world", 2)
    assert normalize_text("Café don't") == ("cafe don't", 0)
    assert normalize_text("room 101") == ("room", 3)
    assert decode(encode("it's a test")) == "it's a test"


def test_empty_and_short_clips_are_padded_not_fatal():
    clips = [np.zeros(0, np.int16), np.ones(10, np.int16), np.ones(5000, np.int16)]
    audio, lengths, short = pad_clips(clips)
    assert short == 2
    assert audio.shape == (3, 5000) and lengths.tolist() == [MIN_SAMPLES, MIN_SAMPLES, 5000]
    feats = LogMel()(audio)
    assert torch.isfinite(feats).all()


def test_transcript_source_drops_and_counts_bad_transcripts():
    clips = [np.ones(16000, np.int16)] * 3 + [np.ones(MIN_SAMPLES, np.int16)]
    texts = ["turn on", "123 !!", "Über cool", "a very long transcript for a tiny clip"]
    source = transcript_source(clips, texts, {})
    assert len(source) == 2
    assert source.info["empty_transcript"] == 1 and source.info["transcript_too_long"] == 1
    assert source.info["chars_outside_alphabet"] == 5  # 1, 2, 3, !, !
    batch = next(source.batches(2))
    got = sorted(decode(t[:n].tolist()) for t, n in zip(batch["target"], batch["target_lengths"]))
    assert got == ["turn on", "uber cool"]


def test_specaugment_only_when_asked():
    torch.manual_seed(0)
    front = LogMel()
    audio = (torch.randn(2, 16000) * 1000).to(torch.int16)
    plain = front(audio)
    assert torch.equal(plain, front(audio))
    assert not torch.equal(plain, front(audio, augment=True))
