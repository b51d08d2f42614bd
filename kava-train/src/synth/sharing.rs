//! The packing and sharing frames: boxes of packs in a store, party food, farm animal legs and fruit
//! picked and shared out. Same rules as `templates.rs`: numbers are drawn so every step is a small
//! non-negative integer, divisions exact by construction.

use super::words::{person, Person};
use super::{Draft, Ex, Problem, Rng};

const PACKED: &[&str] =
    &["pencils", "batteries", "crayons", "markers", "erasers", "glue sticks", "candles", "light bulbs", "tennis balls"];

pub(crate) fn boxes(rng: &mut Rng) -> Problem {
    let Person { name: n, he, his, he_cap: hc, .. } = person(rng);
    let items = *rng.pick(PACKED);
    let (crates, packs, per_pack) = (rng.range(2, 6), rng.range(3, 10), rng.range(4, 12));
    let mut d = Draft::new();
    let p = d.count(&format!("{n} has {crates} boxes of {packs} packs, which is @ packs."), Ex::mul(crates, packs));
    let total = d.count(&format!("With {per_pack} {items} in each pack, that is @ {items}."), Ex::mul(p, per_pack));
    let mut q = format!(
        "{n} orders {crates} boxes of {items} for {his} store. Each box holds {packs} packs, and each pack has \
         {per_pack} {items}."
    );
    match rng.range(0, 2) {
        0 => q += &format!(" How many {items} does {he} order?"),
        1 => {
            let sold = rng.range(10, total * 2 / 3);
            d.count(&format!("After selling {sold}, {he} has @ {items} left."), Ex::sub(total, sold));
            q += &format!(" {hc} sells {sold} {items} in the first week. How many {items} are left?");
        }
        _ => {
            // Choose how many are left as a multiple of the shelf size, so the shelves come out whole.
            // At least 2 shelves, and at least 2 sold.
            let shelf = rng.range(4, (total / 4).min(12));
            let left = shelf * rng.range(2, (total - 2) / shelf);
            let sold = total - left;
            let rest = d.count(&format!("After selling {sold}, {he} has @ {items} left."), Ex::sub(total, sold));
            d.count(&format!("With {shelf} on each shelf, {he} fills @ shelves."), Ex::div(rest, shelf));
            q += &format!(
                " {hc} sells {sold} {items} and puts the rest on shelves, {shelf} on each shelf. \
                 How many shelves does {he} fill?"
            );
        }
    }
    d.finish(q)
}

/// Party food: what is bought, what it is cut into, and the usual number of pieces.
const FOODS: &[(&str, &str, &[i64])] = &[
    ("pizzas", "slices", &[6, 8, 10, 12]),
    ("cakes", "pieces", &[8, 10, 12, 16]),
    ("pies", "pieces", &[6, 8]),
    ("pans of lasagna", "servings", &[6, 8, 9, 12]),
];

pub(crate) fn party(rng: &mut Rng) -> Problem {
    let Person { name: n, .. } = person(rng);
    let &(food, pieces, cuts) = rng.pick(FOODS);
    let (cut, guests, each) = (*rng.pick(cuts), rng.range(4, 15), rng.range(2, 3));
    let host = if rng.chance(1, 2) { rng.range(2, 4) } else { 0 };
    // At least 3 pieces are left, so the answer never reads "1 slices".
    let count = ((guests * each + host + 2) / cut + rng.range(1, 2)).max(2);
    let mut d = Draft::new();
    let made = d.count(&format!("The {count} {food} with {cut} {pieces} each make @ {pieces}."), Ex::mul(count, cut));
    let (eaten, host_text) = if host > 0 {
        let e = d.count(&format!("The guests and {n} eat @ {pieces}."), Ex::mul_add(guests, each, host));
        (e, format!(" {n} eats {host} {pieces} too."))
    } else {
        (
            d.count(
                &format!("The {guests} guests eat {each} {pieces} each, so they eat @ {pieces}."),
                Ex::mul(guests, each),
            ),
            String::new(),
        )
    };
    d.count(&format!("So @ {pieces} are left over."), Ex::sub(made, eaten));
    let q = format!(
        "{n} gets {count} {food} for a party, and each one is cut into {cut} {pieces}. There are {guests} guests, \
         and each guest eats {each} {pieces}.{host_text} How many {pieces} are left over?"
    );
    d.finish(q)
}

const BIRDS: &[&str] = &["chickens", "ducks", "geese", "turkeys"];
const BEASTS: &[&str] = &["cows", "goats", "sheep", "pigs", "horses", "llamas"];

pub(crate) fn farm(rng: &mut Rng) -> Problem {
    let Person { name: n, his, .. } = person(rng);
    let bird = *rng.pick(BIRDS);
    let (b1, b2) = rng.pick_two(BEASTS);
    let (birds, beasts) = (rng.range(3, 20), rng.range(2, 12));
    let mut d = Draft::new();
    if rng.chance(1, 4) {
        let more = rng.range(2, 8);
        let now = d.count(&format!("{n} has @ {b1} now."), Ex::add(beasts, more));
        d.count("With 4 legs each, they have @ legs.", Ex::mul(now, 4));
        let q = format!("{n} has {beasts} {b1} and buys {more} more. How many legs do {his} {b1} have now?");
        return d.finish(q);
    }
    let legs1 = d.count(&format!("The {birds} {bird} have @ legs."), Ex::mul(birds, 2));
    let legs2 = d.count(&format!("The {beasts} {b1} have @ legs."), Ex::mul(beasts, 4));
    let q = if rng.chance(1, 2) {
        let third = rng.range(2, 10);
        let legs3 = d.count(&format!("The {third} {b2} have @ legs."), Ex::mul(third, 4));
        d.count("Altogether the animals have @ legs.", Ex::sum(&[legs1, legs2, legs3]));
        format!("{n} has a farm with {birds} {bird}, {beasts} {b1} and {third} {b2}. How many legs do the animals have altogether?")
    } else {
        d.count("Altogether the animals have @ legs.", Ex::add(legs1, legs2));
        format!("{n} has a farm with {birds} {bird} and {beasts} {b1}. How many legs do the animals have altogether?")
    };
    d.finish(q)
}

const FRUITS: &[&str] = &["apples", "oranges", "peaches", "plums", "pears", "lemons", "apricots"];

pub(crate) fn fruit_picking(rng: &mut Rng) -> Problem {
    let Person { name: n, he, he_cap: hc, .. } = person(rng);
    let fruit = *rng.pick(FRUITS);
    let (per_day, days) = (rng.range(5, 20), rng.range(2, 7));
    let mut d = Draft::new();
    let mut total = d.count(
        &format!("{n} picks {per_day} {fruit} a day for {days} days, so {he} has @ {fruit}."),
        Ex::mul(per_day, days),
    );
    let mut q = format!("{n} picks {per_day} {fruit} every day for {days} days.");
    if rng.chance(1, 2) {
        let bought = rng.range(3, 20);
        total = d.count(&format!("After buying {bought} more, {he} has @ {fruit}."), Ex::add(total, bought));
        q += &format!(" {hc} also buys {bought} more at the market.");
    }
    // At most a third as many friends as fruit, so each friend gets at least 2.
    let friends = rng.range(2, (total / 3).min(6));
    // Eat the remainder (never nothing) so the rest shares out evenly.
    let eaten = match total % friends {
        0 => friends,
        r => r,
    };
    let rest = d.count(&format!("After eating {eaten}, {he} has @ {fruit} left."), Ex::sub(total, eaten));
    d.count(&format!("Each of the {friends} friends gets @ {fruit}."), Ex::div(rest, friends));
    q += &format!(" {hc} eats {eaten} of them and shares the rest equally among {friends} friends. How many {fruit} does each friend get?");
    d.finish(q)
}
