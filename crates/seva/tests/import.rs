//! `seva import orders|customers FILE.csv` as operators run it, on SQLite and PostgreSQL: a dry
//! run writes nothing; a bad row refuses its whole order and is reported with its line; the rest
//! is imported; importing again changes nothing.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // tests: a panic is the failure report

use std::process::Command;

use seva_store::Backend;
use seva_store::testing::TestDb;

const SEVA: &str = env!("CARGO_BIN_EXE_seva");

fn seva(dir: &std::path::Path, url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(SEVA)
        .arg("--data-dir")
        .arg(dir)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("SEVA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ORDERS: &str = "\
order_id,number,customer_id,email,phone,name,status,currency,total,refunded,placed_at,sku,title,quantity,unit_price
1001,#1001,,maryam@example.com,,مریم رضایی,completed,IRR,520000.00,,2026-11-01T08:30:00Z,SCARF-RED,شال ابریشمی,2,210000
1001,#1001,,maryam@example.com,,مریم رضایی,completed,IRR,520000.00,,2026-11-01T08:30:00Z,,Gift wrap,1,100000
1002,#1002,,,+91 98765 43210,प्रिया,completed,INR,1499.00,100.00,2026-11-02,PAITHANI-1,पैठणी साडी,1,1499.00
1003,#1003,,ali@example.com,,,completed,RIAL,10.00,,2026-11-03,,Cap,1,10
1004,#1004,,sara@example.com,,,completed,INR,20.00,,2026-11-04,,Mug,1,10.00
1004,#1004,,sara@example.com,,,completed,INR,20.00,,2026-11-04,,Mug,0,10.00
1005,#1005,,,,,completed,INR,5.00,,2026-11-05,,Pen,1,5.00
1006,#1006,,maryam@example.com,,,shipped,IRR,1.00,,2026-11-06,,Pin,1,1
";

async fn importing_orders_checks_each_order_whole_and_twice_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.csv");
    std::fs::write(&file, ORDERS).unwrap();
    let errors = dir.path().join("refused.csv");
    let file = file.to_str().unwrap();

    let (ok, out, err) = seva(
        dir.path(),
        &db.url,
        &["import", "orders", file, "--dry-run"],
    );
    assert!(!ok, "refused rows fail the command");
    assert!(out.contains("dry run: 2 accepted"), "{out}\n{err}");
    assert_eq!(db.count("orders").await, 0, "a dry run writes nothing");
    assert_eq!(db.count("customers").await, 0);

    let (ok, out, err) = seva(
        dir.path(),
        &db.url,
        &[
            "import",
            "orders",
            file,
            "--errors",
            errors.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        out.contains("2 accepted (2 new, 0 updated, 0 unchanged), 4 refused"),
        "{out}"
    );
    // Each refused order names its first line (the header is line 1) and why.
    assert!(
        err.contains("line 5 (1003)") && err.contains("currency"),
        "{err}"
    );
    assert!(
        err.contains("line 6 (1004)") && err.contains("quantity"),
        "{err}"
    );
    assert!(
        err.contains("line 8 (1005)") && err.contains("email, a phone"),
        "{err}"
    );
    assert!(
        err.contains("line 9 (1006)") && err.contains("status 'shipped'"),
        "{err}"
    );
    let report = std::fs::read_to_string(&errors).unwrap();
    assert!(report.starts_with("line,id,error\n"), "{report}");
    assert_eq!(report.lines().count(), 5);

    assert_eq!(db.count("orders").await, 2);
    assert_eq!(
        db.count("order_lines").await,
        3,
        "1001's two lines, 1002's one"
    );
    assert_eq!(
        db.count("customers").await,
        2,
        "no customer for a refused order"
    );

    let (ok, out, _) = seva(dir.path(), &db.url, &["import", "orders", file]);
    assert!(!ok);
    assert!(
        out.contains("2 accepted (0 new, 0 updated, 2 unchanged)"),
        "{out}"
    );
    assert_eq!(db.count("orders").await, 2);

    // Customers: one new, one already known by email, one bad phone.
    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "customer_id,email,phone,name,language\n\
         loyalty-9,neda@example.com,,ندا,fa\n\
         ,maryam@example.com,,,\n\
         ,,12345,Nobody,\n",
    )
    .unwrap();
    let (ok, out, err) = seva(
        dir.path(),
        &db.url,
        &["import", "customers", customers.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(out.contains("2 accepted"), "{out}");
    assert!(err.contains("line 4"), "{err}");
    assert_eq!(db.count("customers").await, 3);

    // A file without the needed columns is refused before anything is read.
    std::fs::write(dir.path().join("bad.csv"), "id,amount\n1,2\n").unwrap();
    let (ok, _, err) = seva(
        dir.path(),
        &db.url,
        &[
            "import",
            "orders",
            dir.path().join("bad.csv").to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(err.contains("no 'order_id' column"), "{err}");
}

#[tokio::test]
async fn importing_orders_checks_each_order_whole_and_twice_changes_nothing_on_sqlite() {
    importing_orders_checks_each_order_whole_and_twice_changes_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn importing_orders_checks_each_order_whole_and_twice_changes_nothing_on_postgres() {
    importing_orders_checks_each_order_whole_and_twice_changes_nothing(Backend::Postgres).await;
}
