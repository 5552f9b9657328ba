<?php
/**
 * Stand-ins for the WordPress functions that the screen, Site Health and
 * their texts call, so that they run (and can be timed) without WordPress.
 * Translations return the text; escaping is WordPress's own for the cases
 * the plugin prints; request state (capability, nonce, transients, sites,
 * redirects) lives in Closte_WP::$state, which each test resets.
 *
 * @package Closte_Operator
 */

if ( ! defined( 'MINUTE_IN_SECONDS' ) ) {
	define( 'MINUTE_IN_SECONDS', 60 );
}

/**
 * What a stand-in wp_die() throws.
 */
final class Closte_WP_Died extends RuntimeException {

	public function __construct( string $message, public readonly int $status ) {
		parent::__construct( $message );
	}
}

/**
 * What a stand-in wp_safe_redirect() throws (the code after it would exit).
 */
final class Closte_WP_Redirected extends RuntimeException {

	public function __construct( public readonly string $location ) {
		parent::__construct( 'redirect to ' . $location );
	}
}

/**
 * The state the stand-ins read and write.
 */
final class Closte_WP {

	/**
	 * Capability, nonce verdict, request method, transients, sites (id =>
	 * name), get_sites() calls, hooks, filters applied.
	 *
	 * @var array
	 */
	public static array $state = array();

	public static function reset(): void {
		self::$state = array(
			'can'        => true,
			'nonce_ok'   => true,
			'method'     => 'POST',
			'user'       => 7,
			'transients' => array(),
			'sites'      => array(),
			'get_sites'  => array(),
			'hooks'      => array(),
			'main_site'  => true,
			'routes'     => array(),
		);
		$_SERVER['REQUEST_METHOD'] = 'POST';
		$_GET                      = array();
		$_POST                     = array();
	}
}
Closte_WP::reset();

// phpcs:disable WordPress.NamingConventions, Squiz.Commenting.FunctionComment.Missing -- WordPress's own names.

function __( $text, $domain = 'default' ) {
	return $text;
}

function _n( $single, $plural, $number, $domain = 'default' ) {
	return 1 === (int) $number ? $single : $plural;
}

function esc_html( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

function esc_attr( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}

function esc_url( $url ) {
	return htmlspecialchars( (string) $url, ENT_QUOTES, 'UTF-8' );
}

function esc_html__( $text, $domain = 'default' ) {
	return esc_html( $text );
}

function esc_html_e( $text, $domain = 'default' ) {
	echo esc_html( $text );
}

function number_format_i18n( $number, $decimals = 0 ) {
	return number_format( (float) $number, $decimals );
}

function human_time_diff( $from, $to = 0 ) {
	$to   = $to ?: time();
	$diff = abs( (int) $to - (int) $from );
	if ( $diff < 3600 ) {
		return max( 1, (int) round( $diff / 60 ) ) . ' mins';
	}
	if ( $diff < 86400 ) {
		return (int) round( $diff / 3600 ) . ' hours';
	}
	return (int) round( $diff / 86400 ) . ' days';
}

function wp_date( $format, $timestamp = null ) {
	return gmdate( 'Y-m-d H:i', (int) $timestamp );
}

function get_option( $name, $fallback = false ) {
	return array(
		'date_format' => 'Y-m-d',
		'time_format' => 'H:i',
	)[ $name ] ?? $fallback;
}

function add_query_arg( $args, $url ) {
	$query = http_build_query( $args );
	return $url . ( str_contains( $url, '?' ) ? '&' : '?' ) . $query;
}

function network_admin_url( $path = '' ) {
	return 'http://example.test/wp-admin/network/' . $path;
}

function rest_url( $path = '' ) {
	return 'http://example.test/wp-json/' . $path;
}

function current_user_can( $capability ) {
	return 'manage_network' === $capability && Closte_WP::$state['can'];
}

function wp_die( $message = '', $title = '', $args = array() ) {
	throw new Closte_WP_Died( (string) $message, (int) ( $args['response'] ?? 500 ) );
}

function check_admin_referer( $action = -1, $name = '_wpnonce' ) {
	if ( ! Closte_WP::$state['nonce_ok'] ) {
		wp_die( 'The link you followed has expired.', '', array( 'response' => 403 ) );
	}
	return 1;
}

function wp_safe_redirect( $location, $status = 302 ) {
	throw new Closte_WP_Redirected( (string) $location );
}

function sanitize_text_field( $text ) {
	return trim( preg_replace( '/[\r\n\t ]+/', ' ', strip_tags( (string) $text ) ) );
}

function sanitize_key( $key ) {
	return preg_replace( '/[^a-z0-9_\-]/', '', strtolower( (string) $key ) );
}

function wp_unslash( $value ) {
	return is_array( $value ) ? array_map( 'wp_unslash', $value ) : ( is_string( $value ) ? stripslashes( $value ) : $value );
}

function get_current_user_id() {
	return Closte_WP::$state['user'];
}

function set_site_transient( $name, $value, $expiration = 0 ) {
	Closte_WP::$state['transients'][ $name ] = $value;
	return true;
}

function get_site_transient( $name ) {
	return Closte_WP::$state['transients'][ $name ] ?? false;
}

function delete_site_transient( $name ) {
	unset( Closte_WP::$state['transients'][ $name ] );
	return true;
}

function wp_nonce_field( $action = -1, $name = '_wpnonce', $referer = true, $display = true ) {
	$field = '<input type="hidden" id="' . esc_attr( $name ) . '" name="' . esc_attr( $name ) . '" value="nonce-' . esc_attr( $action ) . '" />';
	if ( $display ) {
		echo $field; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped
	}
	return $field;
}

function submit_button( $text = null, $type = 'primary', $name = 'submit', $wrap = true ) {
	echo '<input type="submit" name="' . esc_attr( $name ) . '" class="button ' . esc_attr( $type ) . '" value="' . esc_attr( $text ) . '" />'; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped
}

/**
 * Sites of Closte_WP::$state['sites'] (id => name) among `site__in`; each
 * call is recorded.
 */
function get_sites( $args = array() ) {
	Closte_WP::$state['get_sites'][] = $args;
	$sites = array();
	foreach ( (array) ( $args['site__in'] ?? array() ) as $id ) {
		if ( isset( Closte_WP::$state['sites'][ $id ] ) ) {
			$sites[] = (object) array(
				'blog_id'  => (string) $id,
				'blogname' => Closte_WP::$state['sites'][ $id ],
			);
		}
	}
	return $sites;
}

function apply_filters( $hook, $value, ...$args ) {
	return $value;
}

function add_action( $hook, $callback, $priority = 10, $args = 1 ) {
	Closte_WP::$state['hooks'][ $hook ][] = $callback;
	return true;
}

function add_filter( $hook, $callback, $priority = 10, $args = 1 ) {
	Closte_WP::$state['hooks'][ $hook ][] = $callback;
	return true;
}

function is_main_site() {
	return Closte_WP::$state['main_site'];
}

function is_main_network() {
	return true;
}

function register_rest_route( $namespace, $route, $args = array() ) {
	Closte_WP::$state['routes'][ $namespace . $route ] = $args;
	return true;
}

function add_submenu_page( $parent, $page_title, $menu_title, $capability, $slug, $callback = '' ) {
	return 'settings_page_' . $slug;
}
