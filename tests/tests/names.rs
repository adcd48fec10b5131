//! Two different functions never share a recorded name: methods of different trait impls of one
//! type, a trait method and an inherent method of the same name, and a trait's default method
//! called on different types. A lone `#[profile]` on a method gets the name the block form gives.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use profiler_runtime::export::{export_profile, Format};
use profiler_runtime::profile;

pub struct Point(u32);

impl fmt::Display for Point {
    #[profile]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Point {
    #[profile]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Point({})", self.0)
    }
}

pub trait Source {
    fn get(&self) -> u32;

    /// A default method under a lone attribute.
    #[profile]
    fn describe(&self) -> String {
        format!("source {}", self.get())
    }
}

/// A trait whose default methods are instrumented by the attribute on the trait.
#[profile]
pub trait Sized2 {
    fn size(&self) -> u32;

    fn doubled(&self) -> u32 {
        self.size() * 2
    }
}

#[derive(Debug)]
pub struct Pool(u32);
#[derive(Debug)]
pub struct Cache(u32);

impl Pool {
    #[profile]
    pub fn get(&self) -> u32 {
        self.0
    }
}

impl Source for Pool {
    /// The lone form.
    #[profile]
    fn get(&self) -> u32 {
        self.0 + 1
    }
}

/// The block form of the same trait.
#[profile]
impl Source for Cache {
    fn get(&self) -> u32 {
        self.0 + 2
    }
}

impl Sized2 for Pool {
    fn size(&self) -> u32 {
        1
    }
}

impl Sized2 for Cache {
    fn size(&self) -> u32 {
        2
    }
}

fn names_called(work: impl FnOnce()) -> BTreeMap<String, usize> {
    let profile = profiler_tests::record(work);
    let thread = profiler_tests::this_thread(&profile);
    let mut calls = BTreeMap::new();
    for span in &thread.spans {
        let name = profile.functions[span.function as usize].name.clone();
        *calls.entry(name).or_insert(0) += 1;
    }
    calls
}

#[test]
fn trait_impls_of_one_type_are_told_apart() {
    let calls = names_called(|| {
        let point = Point(3);
        assert_eq!(format!("{point} {point:?}"), "3 Point(3)");
    });
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        [
            "<names::Point as core::fmt::Debug>::fmt",
            "<names::Point as core::fmt::Display>::fmt",
        ]
    );
}

#[test]
fn a_trait_method_and_an_inherent_method_of_one_name() {
    let calls = names_called(|| {
        let pool = Pool(1);
        assert_eq!(pool.get(), 1);
        assert_eq!(Source::get(&pool), 2);
        assert_eq!(Source::get(&Cache(1)), 3);
    });
    // The lone form on `Pool`'s impl and the block form on `Cache`'s name alike.
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        [
            "<names::Cache as names::Source>::get",
            "<names::Pool as names::Source>::get",
            "names::Pool::get",
        ]
    );
}

#[test]
fn a_default_method_records_under_the_type_it_was_called_on() {
    let calls = names_called(|| {
        // The first call decides nothing for the others: Pool first, then Cache, then Pool.
        assert_eq!(Pool(4).describe(), "source 5");
        assert_eq!(Cache(4).describe(), "source 6");
        assert_eq!(Pool(5).describe(), "source 6");
        assert_eq!(Cache(1).doubled(), 4);
        assert_eq!(Pool(1).doubled(), 2);
    });
    let expected: BTreeMap<String, usize> = [
        ("<names::Cache as names::Source>::describe", 1),
        ("<names::Cache as names::Source>::get", 1),
        ("<names::Cache as names::Sized2>::doubled", 1),
        ("<names::Pool as names::Source>::describe", 2),
        ("<names::Pool as names::Source>::get", 2),
        ("<names::Pool as names::Sized2>::doubled", 1),
    ]
    .into_iter()
    .map(|(name, n)| (name.to_owned(), n))
    .collect();
    assert_eq!(calls, expected);
}

/// Every function the profile knows (called or not, in this binary and the crates it links) has
/// a name of its own in the profile, in the CSV and in the folded stacks.
#[test]
fn no_two_functions_share_a_name_in_any_export() {
    let profile = profiler_tests::record(|| {
        let point = Point(1);
        let _ = format!("{point} {point:?}");
        let _ = (Pool(1).describe(), Cache(1).describe(), Pool(1).get());
    });
    let mut seen = BTreeSet::new();
    for function in &profile.functions {
        assert!(
            seen.insert(function.name.clone()),
            "two functions named {:?}",
            function.name
        );
    }
    let dir = std::env::temp_dir().join(format!("profiler-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("run.csv");
    export_profile(&profile, &csv, Some(Format::Csv)).unwrap();
    let mut reader = csv::Reader::from_path(&csv).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = headers.iter().position(|h| h == "name").unwrap();
    let mut rows = BTreeSet::new();
    for record in reader.records() {
        let name = record.unwrap()[column].to_owned();
        assert!(rows.insert(name.clone()), "two CSV rows for {name:?}");
    }
    for name in [
        "<names::Point as core::fmt::Display>::fmt",
        "<names::Point as core::fmt::Debug>::fmt",
        "<names::Pool as names::Source>::describe",
        "<names::Cache as names::Source>::describe",
    ] {
        assert!(rows.contains(name), "{name} missing from the CSV");
    }
    let folded = dir.join("run.folded");
    export_profile(&profile, &folded, Some(Format::Folded)).unwrap();
    let folded = std::fs::read_to_string(&folded).unwrap();
    for frame in ["core::fmt::Display>::fmt", "core::fmt::Debug>::fmt"] {
        assert!(folded.contains(frame), "{frame} missing from:\n{folded}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
