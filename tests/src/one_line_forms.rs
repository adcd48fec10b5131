//! Every form `#[profile]` takes, each with a one-expression body (the shape of getters and
//! small trait methods), under `deny(warnings)` and `clippy::pedantic`. Built with the feature
//! on by this crate, and with it off by `tests/feature-off` (which includes this same file):
//! turning the feature on must not bring a warning into the user's crate, nor turning it off.
#![deny(warnings, clippy::pedantic)]
#![allow(dead_code)]

use std::fmt;

use profiler_runtime::profile;

/// A value with one-line getters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Point {
    x: i32,
    y: i32,
}

impl Point {
    /// A field.
    #[profile]
    #[must_use]
    pub fn x(&self) -> i32 {
        self.x
    }

    /// A constructor.
    #[profile]
    #[must_use]
    pub fn origin() -> Self {
        Point { x: 0, y: 0 }
    }

    /// A reference to a field.
    #[profile]
    #[must_use]
    pub fn y_ref(&self) -> &i32 {
        &self.y
    }

    /// An async getter.
    #[profile]
    pub async fn x_later(&self) -> i32 {
        std::future::ready(self.x).await
    }
}

/// All methods of the block.
#[profile]
impl Point {
    /// A field.
    #[must_use]
    pub fn y(&self) -> i32 {
        self.y
    }

    /// A sum.
    #[must_use]
    pub fn sum(&self) -> i32 {
        self.x + self.y
    }

    /// An async one.
    pub async fn y_later(&self) -> i32 {
        std::future::ready(self.y).await
    }
}

impl fmt::Display for Point {
    #[profile]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

#[profile]
impl fmt::Debug for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Wrapper")
    }
}

/// Wraps a point.
pub struct Wrapper(pub Point);

/// A trait with one-line default methods.
#[profile]
pub trait Shape {
    /// The area.
    fn area(&self) -> i32;

    /// Twice the area.
    fn double(&self) -> i32 {
        self.area() * 2
    }

    /// A constant answer.
    #[must_use]
    fn sides() -> u32 {
        4
    }
}

/// A trait whose default method has its own attribute.
pub trait Named {
    /// The name.
    #[profile]
    fn label(&self) -> &'static str {
        "named"
    }
}

impl Shape for Point {
    #[profile]
    fn area(&self) -> i32 {
        self.x * self.y
    }
}

impl Named for Point {}

/// A free function.
#[profile]
#[must_use]
pub fn one() -> u32 {
    1
}

/// A free async function.
#[profile]
pub async fn two() -> u32 {
    std::future::ready(2).await
}

/// A unit body.
#[profile]
pub fn nothing() {}

/// A generic function.
#[profile]
#[must_use]
pub fn first<T: Copy>(items: &[T]) -> Option<T> {
    items.first().copied()
}
