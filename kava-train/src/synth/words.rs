//! Vocabulary shared by the frames: people with their pronouns, teachers, and the a/an rule.

use super::Rng;

/// A person and the pronouns a sentence about them needs (`he_cap` starts a sentence).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Person {
    pub name: &'static str,
    pub he: &'static str,
    pub him: &'static str,
    pub his: &'static str,
    pub he_cap: &'static str,
    pub his_cap: &'static str,
}

/// First names, `true` for "she". Varied origins so the model does not tie answers to names.
pub(crate) const NAMES: &[(&str, bool)] = &[
    ("Mia", true),
    ("Liam", false),
    ("Olivia", true),
    ("Noah", false),
    ("Emma", true),
    ("Ethan", false),
    ("Ava", true),
    ("Lucas", false),
    ("Sofia", true),
    ("Mason", false),
    ("Isabella", true),
    ("James", false),
    ("Harper", true),
    ("Daniel", false),
    ("Chloe", true),
    ("Samuel", false),
    ("Grace", true),
    ("Owen", false),
    ("Lily", true),
    ("Henry", false),
    ("Nora", true),
    ("Jack", false),
    ("Aisha", true),
    ("Omar", false),
    ("Priya", true),
    ("Ravi", false),
    ("Mei", true),
    ("Kenji", false),
    ("Lucia", true),
    ("Mateo", false),
    ("Zara", true),
    ("Kwame", false),
];

const TEACHERS: &[(&str, bool)] = &[
    ("Ms. Garcia", true),
    ("Mr. Brown", false),
    ("Mrs. Kim", true),
    ("Mr. Singh", false),
    ("Ms. Okafor", true),
    ("Mr. Novak", false),
    ("Mrs. Rossi", true),
    ("Mr. Tanaka", false),
];

fn person_of(&(name, she): &(&'static str, bool)) -> Person {
    if she {
        Person { name, he: "she", him: "her", his: "her", he_cap: "She", his_cap: "Her" }
    } else {
        Person { name, he: "he", him: "him", his: "his", he_cap: "He", his_cap: "His" }
    }
}

pub(crate) fn person(rng: &mut Rng) -> Person {
    person_of(rng.pick(NAMES))
}

/// Two different people, for problems with a friend or sibling.
pub(crate) fn two_people(rng: &mut Rng) -> (Person, Person) {
    let (a, b) = rng.pick_two(NAMES);
    (person_of(a), person_of(b))
}

pub(crate) fn teacher(rng: &mut Rng) -> Person {
    person_of(rng.pick(TEACHERS))
}

/// `word` with its indefinite article: "a notebook", "an apple", "an 80-page book", "a unicorn".
pub(crate) fn a(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let digits: String = lower.chars().take_while(char::is_ascii_digit).collect();
    let vowel_sound = if !digits.is_empty() {
        // Spoken numbers: "eight…", "eleven", "eighteen" start with a vowel sound.
        digits.starts_with('8') || ((digits == "11" || digits == "18") && digits.len() == 2)
    } else {
        let starts_vowel = lower.starts_with(['a', 'e', 'i', 'o', 'u']);
        // "u" said "you" takes "a"; "hour" has a silent "h".
        let you_sound = ["uni", "use", "usu", "uk"].iter().any(|p| lower.starts_with(p));
        (starts_vowel && !you_sound) || lower.starts_with("hour")
    };
    format!("{} {word}", if vowel_sound { "an" } else { "a" })
}
