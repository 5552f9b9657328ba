<?php
/**
 * Test tool: runs one command inside the test WordPress and prints one JSON
 * line. There is no wp-cli on the test machines; this is the part of it the
 * tests need.
 *
 *     php wp-tool.php DOCROOT HOST COMMAND [JSON-ARGUMENTS]
 *
 * Commands: install, create-site, set-domain, delete-site, sites, closte,
 * um, queue, queue-burst, site-health, login-token, um-map, cron, cli,
 * insert-sites, interval, options.
 *
 * @package Closte_Operator
 */

if ( PHP_SAPI !== 'cli' || $argc < 4 ) {
	fwrite( STDERR, "usage: php wp-tool.php DOCROOT HOST COMMAND [JSON-ARGUMENTS]\n" );
	exit( 2 );
}
list( , $closte_e2e_docroot, $closte_e2e_host, $closte_e2e_command ) = $argv;
$closte_e2e_args = isset( $argv[4] ) ? json_decode( $argv[4], true ) : array();

// What a request to the network's main site would carry.
$_SERVER['HTTP_HOST']       = $closte_e2e_host;
$_SERVER['SERVER_NAME']     = preg_replace( '/:\d+$/', '', $closte_e2e_host );
$_SERVER['SERVER_PORT']     = preg_match( '/:(\d+)$/', $closte_e2e_host, $m ) ? $m[1] : '80';
$_SERVER['REQUEST_URI']     = '/';
$_SERVER['REQUEST_METHOD']  = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REMOTE_ADDR']     = '127.0.0.1';

if ( 'install' === $closte_e2e_command ) {
	define( 'CLOSTE_E2E_INSTALLING', true ); // wp-config.php leaves MULTISITE off.
	define( 'WP_INSTALLING', true );
}

// Every PHP warning or notice from here on is part of the answer.
$closte_e2e_problems = array();
set_error_handler(
	function ( $level, $message, $file, $line ) use ( &$closte_e2e_problems ) {
		if ( error_reporting() & $level ) {
			$closte_e2e_problems[] = "$message at $file:$line";
		}
		return false;
	}
);

require $closte_e2e_docroot . '/wp-load.php';

/**
 * Prints the answer and ends.
 *
 * @param array $answer What to print.
 */
function closte_e2e_answer( array $answer ): void {
	global $closte_e2e_problems;
	$answer['php_problems'] = $closte_e2e_problems;
	echo wp_json_encode( $answer ), "\n";
	exit( 0 );
}

/**
 * Reads a required argument.
 *
 * @param string $name Name.
 * @return mixed
 */
function closte_e2e_arg( string $name ) {
	global $closte_e2e_args;
	if ( ! isset( $closte_e2e_args[ $name ] ) ) {
		fwrite( STDERR, "missing argument $name\n" );
		exit( 2 );
	}
	return $closte_e2e_args[ $name ];
}

switch ( $closte_e2e_command ) {
	case 'install':
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		$closte_e2e_email = closte_e2e_arg( 'email' );
		$closte_e2e_r     = wp_install( 'closte-operator e2e', closte_e2e_arg( 'user' ), $closte_e2e_email, false, '', wp_slash( closte_e2e_arg( 'password' ) ) );
		// As wp-cli's multisite-install: the network tables, then the network.
		foreach ( $wpdb->tables( 'ms_global' ) as $closte_e2e_table => $closte_e2e_prefixed ) {
			$wpdb->$closte_e2e_table = $closte_e2e_prefixed;
		}
		install_network();
		$closte_e2e_network = populate_network( 1, $closte_e2e_host, $closte_e2e_email, 'closte-operator e2e', '/', false );
		if ( is_wp_error( $closte_e2e_network ) ) {
			closte_e2e_answer( array( 'error' => $closte_e2e_network->get_error_message() ) );
		}
		closte_e2e_answer( array( 'user_id' => (int) $closte_e2e_r['user_id'] ) );
		break;

	case 'create-site':
		// Timed from here: what a site creation costs WordPress, hooks included.
		$closte_e2e_start = microtime( true );
		if ( 'wp_insert_site' === ( $closte_e2e_args['api'] ?? '' ) ) {
			// The lower-level API, which keeps a port in the domain (wpmu_create_blog strips the colon).
			$closte_e2e_id = wp_insert_site(
				array(
					'domain'  => closte_e2e_arg( 'domain' ),
					'path'    => $closte_e2e_args['path'] ?? '/',
					'title'   => closte_e2e_arg( 'title' ),
					'user_id' => 1,
				)
			);
		} else {
			$closte_e2e_id = wpmu_create_blog( closte_e2e_arg( 'domain' ), $closte_e2e_args['path'] ?? '/', closte_e2e_arg( 'title' ), 1, array(), get_main_network_id() );
		}
		$closte_e2e_secs  = microtime( true ) - $closte_e2e_start;
		if ( is_wp_error( $closte_e2e_id ) ) {
			closte_e2e_answer( array( 'error' => $closte_e2e_id->get_error_message() ) );
		}
		closte_e2e_answer(
			array(
				'id'      => (int) $closte_e2e_id,
				'seconds' => $closte_e2e_secs,
			)
		);
		break;

	case 'set-domain':
		$closte_e2e_start = microtime( true );
		$closte_e2e_r     = wp_update_site( (int) closte_e2e_arg( 'id' ), array( 'domain' => closte_e2e_arg( 'domain' ) ) );
		closte_e2e_answer(
			array(
				'error'   => is_wp_error( $closte_e2e_r ) ? $closte_e2e_r->get_error_message() : null,
				'seconds' => microtime( true ) - $closte_e2e_start,
			)
		);
		break;

	case 'delete-site':
		require_once ABSPATH . 'wp-admin/includes/ms.php';
		$closte_e2e_start = microtime( true );
		wpmu_delete_blog( (int) closte_e2e_arg( 'id' ), true );
		closte_e2e_answer(
			array(
				'exists'  => null !== get_site( (int) closte_e2e_arg( 'id' ) ),
				'seconds' => microtime( true ) - $closte_e2e_start,
				'queue'   => Closte_Operator_Plugin::instance()->queue->entries(),
				'failed'  => Closte_Operator_Plugin::instance()->queue->failures(),
			)
		);
		break;

	case 'sites':
		$closte_e2e_sites = array();
		foreach ( get_sites( array( 'number' => 0 ) ) as $closte_e2e_site ) {
			$closte_e2e_sites[] = array(
				'id'     => (int) $closte_e2e_site->blog_id,
				'domain' => $closte_e2e_site->domain,
				'path'   => $closte_e2e_site->path,
			);
		}
		closte_e2e_answer( array( 'sites' => $closte_e2e_sites ) );
		break;

	case 'closte':
		// One raw request to the Closte client URL, through the WordPress HTTP
		// function a caller would use (a pingback uses wp_safe_remote_post, a
		// form plugin wp_remote_post, ...).
		$closte_e2e_start    = microtime( true );
		$closte_e2e_function = $closte_e2e_args['function'] ?? 'wp_remote_request';
		if ( ! in_array( $closte_e2e_function, array( 'wp_remote_request', 'wp_remote_post', 'wp_remote_get', 'wp_safe_remote_request', 'wp_safe_remote_post', 'wp_safe_remote_get' ), true ) ) {
			fwrite( STDERR, "unknown function $closte_e2e_function\n" );
			exit( 2 );
		}
		$closte_e2e_request = array(
			'body'       => $closte_e2e_args['body'] ?? null,
			'timeout'    => 45,
			'user-agent' => $closte_e2e_args['user_agent'] ?? 'WP-Ultimo-Closte-Integration/2.0',
			'headers'    => $closte_e2e_args['headers'] ?? array(),
		);
		if ( isset( $closte_e2e_args['method'] ) ) {
			$closte_e2e_request['method'] = $closte_e2e_args['method'];
		}
		$closte_e2e_r    = $closte_e2e_function( 'https://app.closte.com/api/client/' . closte_e2e_arg( 'endpoint' ), $closte_e2e_request );
		$closte_e2e_secs = microtime( true ) - $closte_e2e_start;
		closte_e2e_answer(
			is_wp_error( $closte_e2e_r )
				? array(
					'wp_error' => $closte_e2e_r->get_error_message(),
					'seconds'  => $closte_e2e_secs,
				)
				: array(
					'code'    => wp_remote_retrieve_response_code( $closte_e2e_r ),
					'body'    => wp_remote_retrieve_body( $closte_e2e_r ),
					'json'    => json_decode( wp_remote_retrieve_body( $closte_e2e_r ), true ),
					'seconds' => $closte_e2e_secs,
				)
		);
		break;

	case 'um':
		// A Closte client that calls exactly as Ultimate Multisite's Closte
		// integration does: nothing unless CLOSTE_CLIENT_API_KEY is defined and
		// not empty; each call a wp_remote_post of a form body holding `apikey`
		// (that constant), 45 s timeout, its headers; an answer of 400 or more
		// counts as "HTTP N error". An add that is not rejected as an invalid
		// domain goes on to the SSL endpoints until one answers below 400.
		$closte_e2e_calls = array();
		$closte_e2e_send  = function ( string $endpoint, array $data ) use ( &$closte_e2e_calls ) {
			if ( ! defined( 'CLOSTE_CLIENT_API_KEY' ) || empty( CLOSTE_CLIENT_API_KEY ) ) {
				$closte_e2e_calls[] = array( 'endpoint' => $endpoint, 'skipped' => true );
				return array( 'success' => false, 'error' => 'Closte API Key not found.' );
			}
			$response = wp_remote_post(
				'https://app.closte.com/api/client' . $endpoint,
				array(
					'blocking' => true,
					'timeout'  => 45,
					'method'   => 'POST',
					'headers'  => array(
						'Content-Type' => 'application/x-www-form-urlencoded',
						'User-Agent'   => 'WP-Ultimo-Closte-Integration/2.0',
					),
					'body'     => array_merge( array( 'apikey' => CLOSTE_CLIENT_API_KEY ), $data ),
				)
			);
			if ( is_wp_error( $response ) ) {
				$closte_e2e_calls[] = array( 'endpoint' => $endpoint, 'wp_error' => $response->get_error_message() );
				return array( 'success' => false, 'error' => $response->get_error_message() );
			}
			$code               = (int) wp_remote_retrieve_response_code( $response );
			$body               = wp_remote_retrieve_body( $response );
			$closte_e2e_calls[] = array( 'endpoint' => $endpoint, 'code' => $code, 'body' => $body );
			if ( $code >= 400 ) {
				return array( 'success' => false, 'error' => sprintf( 'HTTP %d error', $code ) );
			}
			$json = json_decode( $body, true );
			return is_array( $json ) ? $json : array( 'success' => false, 'error' => 'Invalid JSON response' );
		};
		$closte_e2e_domain = (string) ( $closte_e2e_args['domain'] ?? '' );
		$closte_e2e_data   = array(
			'domain'   => $closte_e2e_domain,
			'wildcard' => str_starts_with( $closte_e2e_domain, '*.' ),
		);
		switch ( closte_e2e_arg( 'call' ) ) {
			case 'test':
				$closte_e2e_r = $closte_e2e_send( '/adddomainalias', array() );
				break;
			case 'add':
				$closte_e2e_r = $closte_e2e_send( '/adddomainalias', $closte_e2e_data );
				if ( ! empty( $closte_e2e_r['success'] ) || 'Invalid or empty domain: ' . $closte_e2e_domain !== ( $closte_e2e_r['error'] ?? null ) ) {
					foreach ( array( '/ssl/install', '/installssl', '/ssl', '/certificate/install' ) as $closte_e2e_endpoint ) {
						$closte_e2e_ssl = $closte_e2e_send(
							$closte_e2e_endpoint,
							array(
								'domain' => $closte_e2e_domain,
								'type'   => 'letsencrypt',
							)
						);
						if ( ! isset( $closte_e2e_ssl['error'] ) || ! preg_match( '/HTTP [45]\d\d/', $closte_e2e_ssl['error'] ) ) {
							break;
						}
					}
				}
				break;
			case 'remove':
				$closte_e2e_r = $closte_e2e_send( '/deletedomainalias', $closte_e2e_data );
				break;
			default:
				fwrite( STDERR, "unknown call\n" );
				exit( 2 );
		}
		closte_e2e_answer(
			array(
				'result' => $closte_e2e_r,
				'calls'  => $closte_e2e_calls,
			)
		);
		break;

	case 'queue-burst':
		// Queues deletes of the given domains as fast as it can, from the
		// moment `at` (Unix time), so that two processes started together
		// write the queue at the same time. Reports the database queries of
		// each write.
		global $wpdb;
		$closte_e2e_plugin  = Closte_Operator_Plugin::instance();
		$closte_e2e_queries = array();
		while ( microtime( true ) < (float) closte_e2e_arg( 'at' ) ) {
			usleep( 1000 );
		}
		$closte_e2e_late = microtime( true ) - (float) closte_e2e_arg( 'at' );
		foreach ( closte_e2e_arg( 'domains' ) as $closte_e2e_domain ) {
			$closte_e2e_before = $wpdb->num_queries;
			$closte_e2e_plugin->queue->attempt( Closte_Operator_Queue::delete( $closte_e2e_domain ) );
			$closte_e2e_queries[] = $wpdb->num_queries - $closte_e2e_before;
		}
		closte_e2e_answer(
			array(
				'queries' => $closte_e2e_queries,
				'late'    => $closte_e2e_late,
				'seconds' => microtime( true ) - (float) closte_e2e_arg( 'at' ),
			)
		);
		break;

	case 'queue':
		$closte_e2e_plugin = Closte_Operator_Plugin::instance();
		closte_e2e_answer(
			array(
				'entries'  => $closte_e2e_plugin->queue->entries(),
				'failures' => $closte_e2e_plugin->queue->failures(),
				'down'     => $closte_e2e_plugin->queue->last_unreachable(),
				'last'     => $closte_e2e_plugin->sync->last(),
			)
		);
		break;

	case 'site-health':
		$closte_e2e_admin = new Closte_Operator_Admin( Closte_Operator_Plugin::instance() );
		closte_e2e_answer( $closte_e2e_admin->site_health_test() );
		break;

	case 'login-token':
		// A one-time token for the test-only login mu-plugin.
		$closte_e2e_token = wp_generate_password( 32, false );
		update_site_option(
			'closte_e2e_login',
			array(
				'hash'     => hash( 'sha256', $closte_e2e_token ),
				'user'     => (int) closte_e2e_arg( 'user' ),
				'redirect' => closte_e2e_arg( 'redirect' ),
				'expires'  => time() + 300,
			)
		);
		closte_e2e_answer( array( 'token' => $closte_e2e_token ) );
		break;

	case 'um-map':
		// Ultimate Multisite's domain mapping table (its columns that matter here).
		global $wpdb;
		$closte_e2e_table = $wpdb->base_prefix . 'wu_domain_mappings';
		$wpdb->query( "CREATE TABLE IF NOT EXISTS `$closte_e2e_table` (id bigint unsigned NOT NULL AUTO_INCREMENT, blog_id bigint unsigned NOT NULL, domain varchar(191) NOT NULL, active tinyint NOT NULL DEFAULT 1, PRIMARY KEY (id))" );
		$wpdb->insert(
			$closte_e2e_table,
			array(
				'blog_id' => (int) closte_e2e_arg( 'site' ),
				'domain'  => closte_e2e_arg( 'domain' ),
			)
		);
		closte_e2e_answer( array( 'id' => (int) $wpdb->insert_id ) );
		break;

	case 'cron':
		// This plugin's events on the main site.
		$closte_e2e_events = array();
		foreach ( (array) _get_cron_array() as $closte_e2e_time => $closte_e2e_hooks ) {
			foreach ( array_keys( (array) $closte_e2e_hooks ) as $closte_e2e_hook ) {
				if ( str_starts_with( $closte_e2e_hook, 'closte_operator_' ) ) {
					$closte_e2e_events[] = array(
						'hook' => $closte_e2e_hook,
						'time' => (int) $closte_e2e_time,
					);
				}
			}
		}
		closte_e2e_answer(
			array(
				'events' => $closte_e2e_events,
				'now'    => time(),
			)
		);
		break;

	case 'cli':
		// `wp closte-operator ARGS...` with the plugin's own command class:
		// WP-CLI is not installable on the test machines, so its dispatcher
		// is replaced by this call and its output by an array.
		$closte_e2e_out = new class() implements Closte_Operator_CLI_Output {
			public array $lines = array();
			public ?string $error = null;
			public function line( string $line ): void {
				$this->lines[] = $line;
			}
			public function error( string $message ): void {
				$this->error = $message;
				throw new RuntimeException( $message );
			}
		};
		$closte_e2e_cli  = new Closte_Operator_CLI( Closte_Operator_Plugin::instance(), $closte_e2e_out );
		$closte_e2e_argv = (array) closte_e2e_arg( 'args' );
		$closte_e2e_sub  = (string) array_shift( $closte_e2e_argv );
		if ( ! in_array( $closte_e2e_sub, array( 'status', 'sync', 'queue', 'uninstall' ), true ) ) {
			closte_e2e_answer( array( 'error' => "unknown subcommand $closte_e2e_sub" ) );
		}
		$closte_e2e_start = microtime( true );
		try {
			$closte_e2e_cli->$closte_e2e_sub( $closte_e2e_argv, (array) ( $closte_e2e_args['assoc'] ?? array() ) );
		} catch ( RuntimeException $closte_e2e_e ) { // The command's error(): WP-CLI would exit 1 here.
			unset( $closte_e2e_e );
		}
		closte_e2e_answer(
			array(
				'lines'   => $closte_e2e_out->lines,
				'error'   => $closte_e2e_out->error,
				'seconds' => microtime( true ) - $closte_e2e_start,
			)
		);
		break;

	case 'insert-sites':
		// Sites as rows only, many at a time: what the sync reads. Domains
		// PREFIX-N.scale.example for N in [from, from + count).
		global $wpdb;
		$closte_e2e_from   = (int) closte_e2e_arg( 'from' );
		$closte_e2e_count  = (int) closte_e2e_arg( 'count' );
		$closte_e2e_prefix = (string) closte_e2e_arg( 'prefix' );
		for ( $closte_e2e_i = 0; $closte_e2e_i < $closte_e2e_count; $closte_e2e_i += 500 ) {
			$closte_e2e_rows = array();
			for ( $closte_e2e_n = $closte_e2e_from + $closte_e2e_i; $closte_e2e_n < $closte_e2e_from + min( $closte_e2e_count, $closte_e2e_i + 500 ); $closte_e2e_n++ ) {
				$closte_e2e_rows[] = $wpdb->prepare( '(1, %s, %s, NOW(), NOW())', "$closte_e2e_prefix-$closte_e2e_n.scale.example", '/' );
			}
			$wpdb->query( "INSERT INTO {$wpdb->blogs} (site_id, domain, path, registered, last_updated) VALUES " . implode( ',', $closte_e2e_rows ) );
		}
		closte_e2e_answer( array( 'sites' => (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$wpdb->blogs}" ) ) );
		break;

	case 'interval':
		// The screen's interval field, or (with `um`) Ultimate Multisite's setting.
		$closte_e2e_plugin = Closte_Operator_Plugin::instance();
		if ( array_key_exists( 'um', $closte_e2e_args ) ) {
			if ( null === $closte_e2e_args['um'] ) {
				delete_site_option( 'closte_e2e_um_interval' );
			} else {
				update_site_option( 'closte_e2e_um_interval', $closte_e2e_args['um'] );
			}
			closte_e2e_answer( array( 'saved' => true ) );
		}
		$closte_e2e_error = array_key_exists( 'seconds', $closte_e2e_args ) ? $closte_e2e_plugin->save_check_interval( null === $closte_e2e_args['seconds'] ? null : (int) $closte_e2e_args['seconds'] ) : '';
		closte_e2e_answer(
			array(
				'error'    => $closte_e2e_error,
				'interval' => $closte_e2e_plugin->check_interval(),
			)
		);
		break;

	case 'options':
		// The plugin's network options and whether its table exists.
		global $wpdb;
		$closte_e2e_table = Closte_Operator_Table_Store::table();
		closte_e2e_answer(
			array(
				'options' => $wpdb->get_col( $wpdb->prepare( "SELECT meta_key FROM {$wpdb->sitemeta} WHERE meta_key LIKE %s", 'closte\\_operator\\_%' ) ),
				'table'   => $wpdb->get_var( $wpdb->prepare( 'SHOW TABLES LIKE %s', $closte_e2e_table ) ) === $closte_e2e_table,
			)
		);
		break;

	default:
		fwrite( STDERR, "unknown command $closte_e2e_command\n" );
		exit( 2 );
}
