# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_aliwatch_global_optspecs
    string join \n c/config= database= v/verbose q/quiet h/help V/version
end

function __fish_aliwatch_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_aliwatch_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_aliwatch_using_subcommand
    set -l cmd (__fish_aliwatch_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c aliwatch -n "__fish_aliwatch_needs_command" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_needs_command" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_needs_command" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -s V -l version -d 'Print version'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "run" -d 'The daemon: watch every mailbox, track parcels, send warnings and the daily digest until SIGTERM/SIGINT'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "sync" -d 'One pass of everything that is due now, then exit'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "check-config" -d 'Validate the config and print it with secrets redacted'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "extract" -d 'Offline: classify and extract .eml files (no config, no database)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "import" -d 'Feed .eml files, Maildir folders, mbox files or directories of them through the pipeline (idempotent)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "status" -d 'Orders and parcels (active ones unless --all)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "calendar" -d 'Print the calendar feed of Buyer Protection deadlines (iCalendar, the same as the web face\'s /calendar.ics)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "digest" -d 'Render the digest now'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "add" -d 'Track a parcel by hand. The number must be of a format aliwatch knows and pass its check digit; an order number is refused'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "protection" -d 'Record a protection extension granted by the seller'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "done" -d 'You confirmed receipt: stop tracking and warning for this order'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "untrack" -d 'Stop asking the tracking provider about this order\'s parcels (its protection deadline and warnings go on)'
complete -c aliwatch -n "__fish_aliwatch_needs_command" -f -a "demo" -d 'A first look: build a demo database from example emails embedded in aliwatch (dated relative to today) and serve its dashboard until Ctrl-C. Sends nothing; never touches your database (--database names a new file to keep it, else a temporary one is used)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand run" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand run" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand run" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand run" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand run" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand sync" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand sync" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand sync" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand sync" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand sync" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand check-config" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand check-config" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand check-config" -l connect -d 'Also log in to IMAP, SMTP and the tracking API and report each'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand check-config" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand check-config" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand extract" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand extract" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand extract" -l json -d 'One JSON object per file, one per line; the fields are described in docs/formats.md (installed in /usr/share/doc/aliwatch/)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand extract" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand extract" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand extract" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand import" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand import" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand import" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand import" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand import" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -l json -d 'One JSON document instead of the table; the fields are described in docs/formats.md (installed in /usr/share/doc/aliwatch/)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -l all -d 'Include completed orders, with why and when they completed'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -l wide -d 'One line per parcel with every column in full, whatever the terminal\'s width (the default fits 80 columns, or the terminal)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand status" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand calendar" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand calendar" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand calendar" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand calendar" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand calendar" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -l print -d 'Write its text part to stdout'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -l send -d 'Mail it and record it as today\'s digest'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand digest" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -l order -d 'The order the parcel belongs to (one an email named, unless --create)' -r
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -l create -d 'Record the --order even though no email named it'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -l force -d 'Accept a carrier format aliwatch does not know (a failing check digit is still refused)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand add" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -l extend -d 'Add DAYS to the current end' -r
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -l until -d 'Set the end date (never earlier than the current one)' -r
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand protection" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand done" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand done" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand done" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand done" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand done" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand untrack" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand untrack" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand untrack" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand untrack" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand untrack" -s h -l help -d 'Print help'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand demo" -l listen -d 'Where the dashboard listens' -r
complete -c aliwatch -n "__fish_aliwatch_using_subcommand demo" -s c -l config -d 'Config file (else $ALIWATCH_CONFIG, /etc/aliwatch/config.toml, $XDG_CONFIG_HOME/aliwatch/config.toml)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand demo" -l database -d 'Database file (overrides the config\'s `database`)' -r -F
complete -c aliwatch -n "__fish_aliwatch_using_subcommand demo" -s v -l verbose -d 'More log output (-v debug, -vv trace)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand demo" -s q -l quiet -d 'Less log output (-q warnings and errors only, -qq errors only)'
complete -c aliwatch -n "__fish_aliwatch_using_subcommand demo" -s h -l help -d 'Print help'
