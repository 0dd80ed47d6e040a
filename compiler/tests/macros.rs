//! dbt-style macros (`macros dir=...`): callable from every kind of template without an
//! import, expanded into the plan, so the plan needs no macro source at run time.

use std::path::{Path, PathBuf};

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("stir-macros-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MANIFEST: &str = r#"
project shop
serving postgres
staging s3 bucket=b
endpoint scraper
source raw { table orders }
tag daily
macros dir="macros"
models dir="models" {
    model stg_orders tags=daily
    model mart_revenue tags=daily materialized=incremental
}
schedule daily cron="0 2 * * *" timeout="1h" {
    sql "truncate table {{ scratch('events') }}"
    run tag:daily
    sync revenue
    request refresh
}
sync revenue from=mart_revenue to=revenue {
    key day
    column day type=date
    column amount type="numeric(14,2)"
    delete-where "amount < {{ cents(500) }}"
}
request refresh limit=10 {
    query "models/refresh.sql"
    post endpoint=scraper path="/r"
    body "{{ row.day }}"
}
"#;

fn project(s: &Scratch) -> PathBuf {
    s.write(
        "macros/money.sql",
        "{% macro cents(x, scale=2) -%}\n  round({{ x }} / 100, {{ scale }})\n{%- endmacro %}\n",
    );
    s.write(
        "macros/nested/tables.sql",
        "{% macro scratch(name) %}{{ ref('stg_orders') }}_{{ name }}{% endmacro %}\n\
         {% macro since(col) -%}\n{% if is_incremental() %}where {{ col }} > (select max({{ col }}) from {{ this }}){% else %}where 1{% endif %}\n{%- endmacro %}\n\
         {% macro upstream() %}{{ ref('stg_orders') }}{% endmacro %}\n",
    );
    s.write(
        "models/stg_orders.sql",
        "select day, amount from {{ source('raw', 'orders') }}\n",
    );
    // The only read of stg_orders is inside a macro: the dependency must still be seen.
    s.write(
        "models/mart_revenue.sql",
        "select day, {{ cents('amount', scale=4) }} as amount from {{ upstream() }}\n{{ since('day') }}\n",
    );
    s.write(
        "models/refresh.sql",
        "select day from {{ upstream() }} where amount > {{ cents(1) }}\n",
    );
    s.write("stir.kdl", MANIFEST)
}

fn plan_of(manifest: &Path) -> serde_json::Value {
    let c = stir::compile_path(manifest).unwrap();
    let errors: Vec<_> = c.findings.iter().map(|f| f.message.clone()).collect();
    assert!(!c.has_errors(), "{errors:?}");
    let plan = stir::planner::build(&c).unwrap();
    serde_json::from_str(&plan.to_json()).unwrap()
}

#[test]
fn macros_expand_in_every_template_and_the_plan_needs_no_macro_source() {
    let s = Scratch::new("every");
    let manifest = project(&s);
    let plan = plan_of(&manifest);
    let model = |n: &str| {
        plan["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()
            .clone()
    };
    let mart = model("mart_revenue");
    assert_eq!(
        mart["sql"],
        "select day, round(amount / 100, 4) as amount from dbt.stg_orders\nwhere 1\n".trim_end()
    );
    assert_eq!(
        mart["sql_incremental"],
        "select day, round(amount / 100, 4) as amount from dbt.stg_orders\nwhere day > (select max(day) from dbt.mart_revenue)"
    );
    assert_eq!(mart["deps"], serde_json::json!(["stg_orders"]));
    let text = plan.to_string();
    assert!(
        text.contains("truncate table dbt.stg_orders_events"),
        "{text}"
    );
    assert!(text.contains("amount < round(500 / 100, 2)"), "{text}");
    assert!(text.contains("where amount > round(1 / 100, 2)"), "{text}");
    // Only the request body stays a template: the runtime fills it per row.
    assert!(
        !text.contains("{%") && !text.contains("cents(") && !text.contains("upstream("),
        "{text}"
    );
    // Self-contained: the same plan without the macros folder on disk.
    std::fs::remove_dir_all(s.0.join("macros")).unwrap();
    let c = stir::compile_path(&manifest).unwrap();
    assert!(c.has_errors(), "a missing macros folder must be an error");
}

#[test]
fn a_changed_macro_changes_the_plan() {
    let s = Scratch::new("changed");
    let manifest = project(&s);
    let before = plan_of(&manifest);
    s.write(
        "macros/money.sql",
        "{% macro cents(x, scale=2) -%}\n  round({{ x }} / 100.0, {{ scale }})\n{%- endmacro %}\n",
    );
    let after = plan_of(&manifest);
    assert_ne!(before["plan_hash"], after["plan_hash"]);
    assert!(after.to_string().contains("round(amount / 100.0, 4)"));
}

#[test]
fn a_macro_that_calls_itself_without_end_is_a_finding_not_a_crash() {
    let s = Scratch::new("recursion");
    let manifest = project(&s);
    // Within one file minijinja's own recursion limit stops it; across files, stir's.
    s.write(
        "macros/loop.sql",
        "{% macro forever(n) %}{{ forever(n + 1) }}{% endmacro %}\n{% macro ping(n) %}{{ pong(n) }}{% endmacro %}",
    );
    s.write(
        "macros/loop2.sql",
        "{% macro pong(n) %}{{ ping(n) }}{% endmacro %}",
    );
    for (call, says) in [
        ("forever(0)", "recursion limit exceeded"),
        ("ping(0)", "more than 64 macros deep"),
    ] {
        s.write(
            "models/stg_orders.sql",
            &format!("select {{{{ {call} }}}}\n"),
        );
        let c = stir::compile_path(&manifest).unwrap();
        let f = c
            .findings
            .iter()
            .find(|f| f.code == "stir::template")
            .expect("a template finding");
        assert!(f.message.contains(says), "{}", f.message);
    }
}

#[test]
fn a_macros_folder_with_a_link_loop_is_a_finding_not_a_hang() {
    let s = Scratch::new("loop");
    let manifest = project(&s);
    std::os::unix::fs::symlink("..", s.0.join("macros/nested/back")).unwrap();
    let c = stir::compile_path(&manifest).unwrap();
    let f = c
        .findings
        .iter()
        .find(|f| f.code == "stir::missing_file")
        .expect("a finding for the macros folder");
    assert!(f.message.contains("more than 16 deep"), "{}", f.message);
}
