//! A connector from the future: it exports Weir's interfaces at
//! `weir:connector@0.2.0`, a release line this host does not speak (a `0.2`
//! may change any type). The host must refuse it at load time with an error
//! naming its version, the versions the host supports and the fix, and never
//! call into it.

wit_bindgen::generate!({
    inline: "
        package weir:connector@0.2.0;

        interface types {
            type json = string;
            variant error { config(string), transient(string), permanent(string), unsupported(string) }
            record checkpoint { format: u32, state: json }
            record %record { key: string, version: option<u64>, data: json }
            record page { records: list<%record>, checkpoint: checkpoint, has-more: bool }
        }

        interface setup {
            use types.{json, error};
            spec: func() -> json;
            check: func(config: json) -> result<_, error>;
        }

        interface source {
            use types.{json, error, checkpoint, page};
            read: func(config: json, stream-name: string, checkpoint: option<checkpoint>) -> result<page, error>;
        }

        world connector {
            export setup;
            export source;
        }
    ",
});

use exports::weir::connector::{setup, source};
use weir::connector::types::{Checkpoint, Error, Page};

struct Future;

export!(Future);

impl setup::Guest for Future {
    fn spec() -> String {
        r#"{"name":"future-version","version":"0.1.0"}"#.into()
    }

    fn check(_config: String) -> Result<(), Error> {
        Ok(())
    }
}

impl source::Guest for Future {
    fn read(
        _config: String,
        _stream: String,
        checkpoint: Option<Checkpoint>,
    ) -> Result<Page, Error> {
        Ok(Page {
            records: vec![],
            checkpoint: checkpoint.unwrap_or(Checkpoint {
                format: 1,
                state: "{}".into(),
            }),
            has_more: false,
        })
    }
}
