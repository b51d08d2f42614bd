//! The counting and measuring frames: travel, reading, gardens, classrooms, recipes and
//! collections. Same rules as `templates.rs`: numbers are drawn so every step is a small
//! non-negative integer, divisions exact by construction.

use super::words::{a, person, teacher, two_people, Person};
use super::{Draft, Ex, Problem, Rng};

/// Ways to travel: how the question says it, the verb in trace sentences, its base form, the
/// unit, and the speed range (low, high, step).
const MODES: &[(&str, &str, &str, &str, i64, i64, i64)] = &[
    ("drives", "drives", "drive", "miles", 30, 65, 5),
    ("rides a bike", "rides", "ride", "kilometers", 10, 20, 1),
    ("walks", "walks", "walk", "miles", 2, 4, 1),
    ("travels by boat", "travels", "travel", "kilometers", 15, 40, 5),
    ("rides a scooter", "rides", "ride", "kilometers", 8, 16, 2),
];

pub(crate) fn travel(rng: &mut Rng) -> Problem {
    let Person { name: n, he, .. } = person(rng);
    let &(intro, verb, base, unit, lo, hi, step) = rng.pick(MODES);
    let (s1, h1) = (rng.range_by(lo, hi, step), rng.range(2, 5));
    let mut d = Draft::new();
    let mut total = d.count(&format!("In the first {h1} hours {he} {verb} @ {unit}."), Ex::mul(s1, h1));
    let mut q = format!("{n} {intro} at {s1} {unit} per hour for {h1} hours");
    let two_legs = rng.chance(2, 3);
    if two_legs {
        let (s2, h2) = (rng.range_by(lo, hi, step), rng.range(2, 4));
        let second = d.count(&format!("In the next {h2} hours {he} {verb} @ {unit}."), Ex::mul(s2, h2));
        total = d.count(&format!("Altogether {he} {verb} @ {unit}."), Ex::add(total, second));
        q += &format!(", then at {s2} {unit} per hour for {h2} more hours.");
    } else {
        q += ".";
    }
    if !two_legs || rng.chance(1, 2) {
        let trip = total + rng.range(3, 40);
        d.count(&format!("The trip is {trip} {unit}, so {he} still has @ {unit} to go."), Ex::sub(trip, total));
        q += &format!(" The whole trip is {trip} {unit}. How many {unit} does {he} still have to go?");
    } else {
        q += &format!(" How many {unit} does {he} {base} in total?");
    }
    d.finish(q)
}

const BOOKS: &[&str] =
    &["book", "novel", "mystery novel", "history book", "fantasy novel", "science book", "biography"];

pub(crate) fn reading(rng: &mut Rng) -> Problem {
    let Person { name: n, he, he_cap: hc, .. } = person(rng);
    let book = *rng.pick(BOOKS);
    let (per_day, days) = (rng.range(8, 30), rng.range(2, 5));
    let mut d = Draft::new();
    let mut read =
        d.count(&format!("{n} reads {per_day} pages a day for {days} days, which is @ pages."), Ex::mul(per_day, days));
    let mut story = format!("{hc} reads {per_day} pages a day for {days} days.");
    if rng.chance(2, 3) {
        let (times, word) = *rng.pick(&[(2, "twice"), (3, "three times")]);
        let next = d
            .count(&format!("The next day {he} reads {word} as many, so {he} reads @ pages."), Ex::mul(per_day, times));
        read = d.count(&format!("So far {he} has read @ pages."), Ex::add(read, next));
        story += &format!(" On the next day, {he} reads {word} as many pages as on each of those days.");
    }
    let half = rng.chance(1, 2);
    // The rest is even when half of it is asked for, so the last division is exact.
    let rest = if half { 2 * rng.range(5, 40) } else { rng.range(10, 80) };
    let pages = read + rest;
    let left = d.count(&format!("The {book} has {pages} pages, so {he} has @ pages left."), Ex::sub(pages, read));
    let ask = if half {
        d.count("Half of the remaining pages is @ pages.", Ex::div(left, 2));
        format!("If {he} wants to read half of the remaining pages tomorrow, how many pages should {he} read?")
    } else {
        format!("How many pages does {he} still have to read?")
    };
    d.finish(format!("{n} is reading {}. {story} {ask}", a(&format!("{pages}-page {book}"))))
}

/// Crops: plant, produce, and the range of produce per plant.
const CROPS: &[(&str, &str, i64, i64)] = &[
    ("tomato plants", "tomatoes", 4, 12),
    ("pepper plants", "peppers", 3, 8),
    ("strawberry plants", "strawberries", 5, 15),
    ("cucumber plants", "cucumbers", 2, 6),
    ("zucchini plants", "zucchinis", 2, 5),
    ("corn plants", "ears of corn", 2, 3),
];
const FLOWERS: &[&str] = &["tulips", "daisies", "roses", "sunflowers", "marigolds", "lilies"];

pub(crate) fn garden(rng: &mut Rng) -> Problem {
    let Person { name: n, he, him, he_cap: hc, .. } = person(rng);
    let (rows, per_row) = (rng.range(2, 8), rng.range(3, 10));
    let mut d = Draft::new();
    if rng.chance(1, 3) {
        let (f1, f2) = rng.pick_two(FLOWERS);
        let (rows2, per_row2) = (rng.range(2, 8), rng.range(3, 10));
        let a1 =
            d.count(&format!("{n} plants {rows} rows of {per_row} {f1}, which is @ {f1}."), Ex::mul(rows, per_row));
        let a2 = d
            .count(&format!("{hc} plants {rows2} rows of {per_row2} {f2}, which is @ {f2}."), Ex::mul(rows2, per_row2));
        d.count(&format!("Altogether {he} plants @ flowers."), Ex::add(a1, a2));
        let q = format!(
            "{n} plants {rows} rows of {f1} with {per_row} in each row and {rows2} rows of {f2} with {per_row2} \
             in each row. How many flowers does {he} plant?"
        );
        return d.finish(q);
    }
    let &(crop, produce, lo, hi) = rng.pick(CROPS);
    let each = rng.range(lo, hi);
    let plants =
        d.count(&format!("{n} has {rows} rows of {per_row} plants, so there are @ plants."), Ex::mul(rows, per_row));
    let grown =
        d.count(&format!("Each plant grows {each} {produce}, so {he} picks @ {produce}."), Ex::mul(plants, each));
    let mut q = format!(
        "{n} plants {rows} rows of {crop} with {per_row} plants in each row. Each plant grows {each} {produce}."
    );
    if rng.chance(1, 2) {
        // Baskets at most a third of the harvest, so at least 2 are filled.
        let basket = rng.range(4, (grown / 3).min(10));
        // Keep the remainder (never nothing) so the rest fills whole baskets.
        let mut keep = match grown % basket {
            0 => basket,
            r => r,
        };
        // "keeps 1 tomatoes" reads badly, so a lone one comes with another basketful.
        if keep == 1 || (grown > keep + 2 * basket && rng.chance(1, 2)) {
            keep += basket;
        }
        let rest = d.count(&format!("After keeping {keep}, {he} has @ {produce} left."), Ex::sub(grown, keep));
        d.count(&format!("In baskets of {basket}, that fills @ baskets."), Ex::div(rest, basket));
        q += &format!(
            " {hc} keeps {keep} {produce} for {him}self and packs the rest into baskets of {basket}. \
             How many baskets does {he} fill?"
        );
    } else {
        q += &format!(" How many {produce} does {he} pick?");
    }
    d.finish(q)
}

const SUPPLIES: &[&str] = &["markers", "glue sticks", "sheets of paper", "balloons", "rulers", "paintbrushes"];

pub(crate) fn classroom(rng: &mut Rng) -> Problem {
    let Person { name: t, he, his, he_cap: hc, .. } = teacher(rng);
    let mut d = Draft::new();
    if rng.chance(1, 3) {
        let (students, share) = (rng.range(12, 30), rng.range(2, 6));
        let boys = rng.range(students / 4, students - students / 4);
        let girls = students - boys;
        let stickers = students * share;
        d.count(&format!("There are {boys} boys and {girls} girls, so there are @ students."), Ex::add(boys, girls));
        d.count("Each student gets @ stickers.", Ex::div(stickers, students));
        let q = format!(
            "{t} shares {stickers} stickers equally among the {boys} boys and {girls} girls in {his} class. \
             How many stickers does each student get?"
        );
        return d.finish(q);
    }
    let (groups, size, each) = (rng.range(3, 8), rng.range(3, 6), rng.range(2, 8));
    let supplies = *rng.pick(SUPPLIES);
    let students = groups * size;
    // Keep the class roughly balanced: "19 boys and 2 girls" reads like a typo.
    let boys = rng.range(students / 4, students - students / 4);
    let girls = students - boys;
    d.count("The class has @ students.", Ex::add(boys, girls));
    let g = d.count(&format!("In groups of {size}, that makes @ groups."), Ex::div(students, size));
    let given = d.count(&format!("Giving each group {each} {supplies} takes @ {supplies}."), Ex::mul(g, each));
    let mut q = format!("{t} has a class of {boys} boys and {girls} girls.");
    if rng.chance(1, 2) {
        let had = given + rng.range(3, 25);
        d.count(&format!("{hc} had {had}, so {he} has @ {supplies} left."), Ex::sub(had, given));
        q += &format!(
            " {hc} has {had} {supplies}. {hc} puts the students into groups of {size} and gives each group \
             {each} {supplies}. How many {supplies} does {he} have left?"
        );
    } else {
        q += &format!(
            " {hc} puts the students into groups of {size} and gives each group {each} {supplies}. \
             How many {supplies} does {he} give out?"
        );
    }
    d.finish(q)
}

const DISHES: &[&str] = &["pancakes", "cookies", "muffins", "waffles", "biscuits", "dinner rolls"];
const INGREDIENTS: &[&str] = &["flour", "sugar", "milk", "oats", "chocolate chips", "yogurt"];

pub(crate) fn recipe(rng: &mut Rng) -> Problem {
    let Person { name: n, he, he_cap: hc, .. } = person(rng);
    let dish = *rng.pick(DISHES);
    let (i1, i2) = rng.pick_two(INGREDIENTS);
    let (makes, batches) = (*rng.pick(&[6, 8, 10, 12, 16, 20, 24]), rng.range(2, 6));
    let (c1, c2) = (rng.range(2, 4), rng.range(2, 3));
    let want = makes * batches;
    let mut d = Draft::new();
    let b = d.count(&format!("To make {want} {dish}, {n} needs @ batches."), Ex::div(want, makes));
    let need1 = d.count(&format!("That takes @ cups of {i1}."), Ex::mul(b, c1));
    let q = match rng.range(0, 2) {
        0 => {
            let need2 = d.count(&format!("It also takes @ cups of {i2}."), Ex::mul(b, c2));
            d.count(&format!("Altogether {he} needs @ cups."), Ex::add(need1, need2));
            format!(
                "A recipe for {makes} {dish} uses {c1} cups of {i1} and {c2} cups of {i2}. {n} wants to make \
                 {want} {dish}. How many cups of {i1} and {i2} does {he} need altogether?"
            )
        }
        1 => {
            let has = rng.range(1, need1 - 1);
            let cups = if has == 1 { "cup" } else { "cups" };
            d.count(&format!("{hc} has {has} {cups}, so {he} needs @ more cups of {i1}."), Ex::sub(need1, has));
            format!(
                "A recipe for {makes} {dish} uses {c1} cups of {i1}. {n} wants to make {want} {dish} but only has \
                 {has} {cups} of {i1}. How many more cups of {i1} does {he} need?"
            )
        }
        _ => format!(
            "A recipe for {makes} {dish} uses {c1} cups of {i1}. {n} wants to make {want} {dish}. \
             How many cups of {i1} does {he} need?"
        ),
    };
    d.finish(q)
}

const COLLECTIONS: &[&str] =
    &["stickers", "marbles", "baseball cards", "seashells", "stamps", "beads", "trading cards", "postcards"];
const CONTAINERS: &[(&str, &str)] = &[("boxes", "box"), ("jars", "jar"), ("bags", "bag"), ("albums", "album")];

pub(crate) fn collecting(rng: &mut Rng) -> Problem {
    let (Person { name: n, he, his, he_cap: hc, .. }, friend) = two_people(rng);
    let items = *rng.pick(COLLECTIONS);
    let (have, packs, per_pack) = (rng.range(30, 90), rng.range(2, 5), rng.range(4, 12));
    let giving = rng.range(3, 15);
    let who = match (rng.chance(1, 2), friend.he) {
        (true, "she") => format!("{his} sister {}", friend.name),
        (true, _) => format!("{his} brother {}", friend.name),
        _ => format!("{his} friend {}", friend.name),
    };
    let mut d = Draft::new();
    let bought = d
        .count(&format!("{n} buys {packs} packs of {per_pack} {items}, which is @ {items}."), Ex::mul(packs, per_pack));
    let total = d.count(&format!("Then {he} has @ {items}."), Ex::add(have, bought));
    let split = rng.chance(1, 3);
    let (&(bins, bin), count) = (rng.pick(CONTAINERS), rng.range(2, 5));
    // When the rest is split equally, the lost ones make it divide evenly.
    let lost = if split {
        let r = (total - giving) % count;
        if r == 0 {
            count
        } else {
            r
        }
    } else {
        rng.range(2, 12)
    };
    let left = if rng.chance(1, 2) {
        d.count(
            &format!("After giving away {giving} and losing {lost}, {he} has @ {items}."),
            Ex::minus(total, &[giving, lost]),
        )
    } else {
        let after = d.count(&format!("After giving {giving} away, {he} has @ {items}."), Ex::sub(total, giving));
        d.count(&format!("After losing {lost}, {he} has @ {items} left."), Ex::sub(after, lost))
    };
    let mut q = format!(
        "{n} has {have} {items}. {hc} buys {packs} packs of {items} with {per_pack} in each pack. \
         Then {he} gives {giving} {items} to {who} and loses {lost}."
    );
    if split {
        d.count(&format!("Shared among {count} {bins}, each {bin} gets @ {items}."), Ex::div(left, count));
        q += &format!(" If {he} puts the rest equally into {count} {bins}, how many {items} go in each {bin}?");
    } else {
        q += &format!(" How many {items} does {he} have now?");
    }
    d.finish(q)
}
