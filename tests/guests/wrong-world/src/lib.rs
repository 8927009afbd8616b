//! A perfectly good component that is not a Weir connector: it exports a
//! greeter interface of another package.

wit_bindgen::generate!({
    inline: "
        package other:greeter@1.0.0;
        interface greet { hello: func(name: string) -> string; }
        world greeter { export greet; }
    ",
});

struct Greeter;

impl exports::other::greeter::greet::Guest for Greeter {
    fn hello(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);
