//! Test fixture: echoes every type of the schema mapping table.

wit_bindgen::generate!({ path: "wit", world: "typezoo" });

struct Zoo;

impl Guest for Zoo {
    fn echo(value: Everything) -> Everything {
        value
    }

    fn divide(a: i32, b: i32) -> Result<i32, String> {
        a.checked_div(b).ok_or_else(|| format!("cannot divide {a} by {b}"))
    }

    fn invert(names: std::collections::BTreeMap<String, u32>) -> std::collections::BTreeMap<u32, String> {
        names.into_iter().map(|(k, v)| (v, k)).collect()
    }

    fn reverse_rgb(rgb: [u8; 3]) -> [u8; 3] {
        [rgb[2], rgb[1], rgb[0]]
    }

    fn nothing() {}

    fn sum_answers(results: Vec<PeerAnswer>) -> i64 {
        results.iter().fold(0i64, |sum, answer| sum.saturating_add(answer.value))
    }

    fn area(shape: Shape) -> Result<f64, Shape> {
        match shape {
            Shape::Circle(r) => Ok(std::f64::consts::PI * r * r),
            Shape::Rect(p) => Ok(f64::from(p.x) * f64::from(p.y)),
            Shape::Empty => Err(Shape::Empty),
        }
    }
}

export!(Zoo);
