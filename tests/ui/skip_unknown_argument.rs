use monitor_runtime::monitor;

#[monitor(args, skip(passwrd))]
fn login(user: &str, password: &str) -> bool {
    user.len() > password.len()
}

#[monitor(skip(user))]
fn skip_without_args(user: &str) -> usize {
    user.len()
}

fn main() {
    login("a", "b");
    skip_without_args("a");
    skipped_twice("a");
}

#[monitor(args, skip(user, user))]
fn skipped_twice(user: &str) -> usize {
    user.len()
}
