"""usage_from_response: token counts out of model responses."""

from __future__ import annotations

import unittest
from types import SimpleNamespace

from sluice import usage_from_response


class UsageFromResponse(unittest.TestCase):
    def test_chat_completions_names(self) -> None:
        resp = {"id": "x", "usage": {"prompt_tokens": 1180, "completion_tokens": 412}}
        self.assertEqual(usage_from_response(resp), (1180, 412))

    def test_responses_api_names(self) -> None:
        resp = {"usage": {"input_tokens": 90, "output_tokens": 7, "total_tokens": 97}}
        self.assertEqual(usage_from_response(resp), (90, 7))

    def test_a_usage_block_directly(self) -> None:
        self.assertEqual(usage_from_response({"prompt_tokens": 5, "completion_tokens": 6}), (5, 6))

    def test_sdk_object_with_usage_attribute(self) -> None:
        resp = SimpleNamespace(usage=SimpleNamespace(prompt_tokens=3, completion_tokens=4))
        self.assertEqual(usage_from_response(resp), (3, 4))

    def test_embeddings_have_no_output(self) -> None:
        resp = {"usage": {"prompt_tokens": 8, "total_tokens": 8}}
        self.assertEqual(usage_from_response(resp), (8, 0))

    def test_no_usage_is_an_error_naming_the_stream_option(self) -> None:
        with self.assertRaises(ValueError) as caught:
            usage_from_response({"choices": []})
        self.assertIn("include_usage", str(caught.exception))
        with self.assertRaises(ValueError):
            usage_from_response({"usage": None})

    def test_counts_must_be_non_negative_ints(self) -> None:
        for bad in (-1, "12", 1.5, True):
            with self.assertRaises(ValueError, msg=repr(bad)):
                usage_from_response({"usage": {"prompt_tokens": bad, "completion_tokens": 1}})
        with self.assertRaises(ValueError):
            usage_from_response({"usage": {"prompt_tokens": 1, "completion_tokens": -2}})
