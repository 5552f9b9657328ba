<?php
/**
 * Test tool: runs one command inside the test WordPress and prints one JSON
 * line. There is no wp-cli on the test machines; this is the part of it the
 * tests need.
 *
 *     php wp-tool.php DOCROOT HOST COMMAND [JSON-ARGUMENTS]
 *
 * Commands: install, create-site, set-domain, delete-site, sites, closte,
 * queue, site-health, login-token, um-map, cron.
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
		// A call as Ultimate Multisite's Closte integration makes it.
		$closte_e2e_start = microtime( true );
		$closte_e2e_r     = wp_remote_request(
			'https://app.closte.com/api/client/' . closte_e2e_arg( 'endpoint' ),
			array(
				'method'     => $closte_e2e_args['method'] ?? 'POST',
				'body'       => $closte_e2e_args['body'] ?? null,
				'timeout'    => 45,
				'user-agent' => 'WP-Ultimo-Closte-Integration/2.0',
			)
		);
		$closte_e2e_secs  = microtime( true ) - $closte_e2e_start;
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

	default:
		fwrite( STDERR, "unknown command $closte_e2e_command\n" );
		exit( 2 );
}
