"""Finding the archive's people in a passage's text (index/people.py)."""

from __future__ import annotations

from index.people import PersonNames

PEOPLE = PersonNames(["Ed Mayo", "Michael Dixon", "Simon Duffy", "Jane Duffy", "Admin"])


def test_a_full_name_is_found_once_with_its_title() -> None:
    text = "The chairman, Dr Michael Dixon, said Michael Dixon would stay."
    assert PEOPLE.mentioned(text) == ["Michael Dixon"]


def test_a_surname_alone_names_the_person_as_news_style_does() -> None:
    assert PEOPLE.mentioned("Said Mr Mayo: “Countries like Japan and Spain ...”") == ["Ed Mayo"]


def test_people_come_in_order_of_first_mention() -> None:
    text = "Ed Mayo welcomed it; Dr Dixon did not, and Mr Mayo replied."
    assert PEOPLE.mentioned(text) == ["Ed Mayo", "Michael Dixon"]


def test_a_shared_surname_names_everyone_who_has_it_and_a_full_name_only_its_owner() -> None:
    assert PEOPLE.mentioned("Duffy disagreed.") == ["Jane Duffy", "Simon Duffy"]
    assert PEOPLE.mentioned("Simon Duffy disagreed.") == ["Simon Duffy"]


def test_lone_handles_and_lower_case_words_name_no_one() -> None:
    # "Admin" is a commenter's handle, not a name to look for; "mayo" is a condiment.
    assert PEOPLE.mentioned("Admin approved the comment about mayo and dixon.") == []
    assert PersonNames([]).mentioned("Ed Mayo") == []
