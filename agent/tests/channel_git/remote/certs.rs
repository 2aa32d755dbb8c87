//! The certificates of the https servers, made with `openssl` as an operator would: a CA, and
//! from it a certificate for 127.0.0.1 and localhost, one for another name, and one that
//! expired in 2020. All share one key, `server.key`.

use std::path::{Path, PathBuf};
use std::process::Command;

use shoal_tests::command::stdout;

/// Makes `ca.pem`, `local.pem`, `other.pem`, `expired.pem` and `server.key` in `dir` (which
/// exists); returns the CA's path.
pub fn make(dir: &Path) -> PathBuf {
    let openssl = |args: &str| {
        stdout(
            Command::new("openssl")
                .args(args.split_whitespace())
                .current_dir(dir),
        );
    };
    openssl(
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
         -subj /CN=shoal-test-CA -addext basicConstraints=critical,CA:TRUE \
         -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.pem",
    );
    openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out server.key");
    for (name, cn, san) in [
        ("local", "localhost", "DNS:localhost,IP:127.0.0.1"),
        ("other", "other.example", "DNS:other.example"),
    ] {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("subjectAltName={san}\n"),
        )
        .unwrap();
        openssl(&format!(
            "req -new -key server.key -subj /CN={cn} -out {name}.csr"
        ));
        openssl(&format!(
            "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile {name}.ext -out {name}.pem"
        ));
    }
    // `openssl x509` sets no start date; `openssl ca` sets both, from its own small database.
    let db = dir.join("ca");
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(db.join("index.txt"), "").unwrap();
    std::fs::write(db.join("serial"), "01\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = test\n[test]\ndir = {}\ndatabase = $dir/index.txt\n\
             serial = $dir/serial\nnew_certs_dir = $dir\ndefault_md = sha256\npolicy = any\n\
             copy_extensions = copy\n[any]\ncommonName = supplied\n",
            db.display()
        ),
    )
    .unwrap();
    openssl(
        "req -new -key server.key -subj /CN=localhost \
         -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -out expired.csr",
    );
    openssl(
        "ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -startdate 20200101000000Z \
         -enddate 20200201000000Z -in expired.csr -out expired.pem",
    );
    dir.join("ca.pem")
}
